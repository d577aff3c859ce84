#!/usr/bin/env bash
# Refresh the dashboard's vendored charting library (Chart.js, with the colour library its UMD build
# bundles) in examples/dashboard/vendor/ from npm.
#
# The built file is committed so that the dashboard needs neither a build step nor a CDN (its
# Content-Security-Policy allows only its own origin). This script is the only way the files in
# vendor/ change: bump a version below, run it from anywhere, review the diff, commit. It needs
# `npm`, `node` and `tar`; it leaves no node_modules behind. chart.umd.js is copied byte for byte
# from the package (its `sourceMappingURL` names a map that is not vendored: only a browser's
# developer tools ask for it, and get a 404).
set -euo pipefail

# Exact versions. Chart.js's UMD build is standalone: it bundles @kurkle/color (its only
# dependency, ^0.6.6 in Chart.js 4.6.2), whose tarball is fetched for its licence, and whose version
# is checked against the banner the bundle carries.
CHARTJS_VERSION=4.6.2
KURKLE_COLOR_VERSION=0.6.6

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/lib.sh
source "$repo_root/scripts/lib.sh"
vendor_start refresh-dashboard-vendor "$repo_root/examples/dashboard/vendor"

chartjs="$(vendor_pack chart.js "$CHARTJS_VERSION")"
color="$(vendor_pack @kurkle/color "$KURKLE_COLOR_VERSION")"

# The dashboard reads the global `Chart` that the UMD build sets, and the licence kept for the bundled
# colour code must be that of the version inside it: check both here rather than in a browser.
bundle="$chartjs/dist/chart.umd.js"
if ! head -c 200 "$bundle" | grep -q "Chart.js v$CHARTJS_VERSION"; then
    echo "refresh-dashboard-vendor: $bundle does not start with the Chart.js v$CHARTJS_VERSION banner" >&2
    exit 1
fi
if ! grep -q '(t="undefined"!=typeof globalThis?globalThis:t||self).Chart=' "$bundle"; then
    echo "refresh-dashboard-vendor: chart.umd.js no longer sets the global Chart; check" \
        "examples/dashboard/charts.js" >&2
    exit 1
fi
if ! grep -q "@kurkle/color v$KURKLE_COLOR_VERSION" "$bundle"; then
    echo "refresh-dashboard-vendor: chart.umd.js does not bundle @kurkle/color" \
        "v$KURKLE_COLOR_VERSION; set KURKLE_COLOR_VERSION to the version its banner names" >&2
    exit 1
fi

echo "refresh-dashboard-vendor: copying into $dest"
vendor_copy "$bundle" chart.umd.js
vendor_copy "$chartjs/LICENSE.md" LICENSE.chart.js
vendor_copy "$color/LICENSE" LICENSE.kurkle-color

vendor_versions scripts/refresh-dashboard-vendor.sh
