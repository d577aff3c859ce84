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
dest="$repo_root/examples/dashboard/vendor"
work="$(mktemp -d "${TMPDIR:-/tmp}/refresh-dashboard-vendor.XXXXXX")"
trap 'rm -rf "$work"' EXIT

echo "refresh-dashboard-vendor: target $dest"
echo "refresh-dashboard-vendor: working in $work"
mkdir -p "$dest"

# pack NAME VERSION -> prints the directory the tarball was extracted into.
# npm verifies the tarball against the registry's integrity hash; we record that hash in VERSIONS.
pack() {
    local name="$1" version="$2" json tarball integrity
    echo "refresh-dashboard-vendor: npm pack $name@$version" >&2
    # Run inside the temp dir so npm never writes a lockfile or node_modules into the repository.
    json="$(cd "$work" && npm pack --json --loglevel=error --pack-destination "$work" \
        "$name@$version")"
    tarball="$(node -e 'const r = JSON.parse(process.argv[1])[0]; process.stdout.write(r.filename)' \
        "$json")"
    integrity="$(node -e 'const r = JSON.parse(process.argv[1])[0]; process.stdout.write(r.integrity)' \
        "$json")"
    mkdir -p "$work/$name"
    tar -xzf "$work/$tarball" -C "$work/$name" --strip-components=1
    printf '%s %s %s\n' "$name" "$version" "$integrity" >>"$work/VERSIONS.body"
    printf '%s\n' "$work/$name"
}

# copy SRC DEST_NAME: install one file with plain permissions and say so.
copy() {
    local src="$1" name="$2"
    if [[ ! -f "$src" ]]; then
        echo "refresh-dashboard-vendor: expected file missing from the package: $src" >&2
        exit 1
    fi
    install -m 0644 "$src" "$dest/$name"
    printf 'refresh-dashboard-vendor:   %-24s %8s bytes\n' "$name" "$(wc -c <"$dest/$name")"
}

chartjs="$(pack chart.js "$CHARTJS_VERSION")"
color="$(pack @kurkle/color "$KURKLE_COLOR_VERSION")"

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
copy "$bundle" chart.umd.js
copy "$chartjs/LICENSE.md" LICENSE.chart.js
copy "$color/LICENSE" LICENSE.kurkle-color

{
    echo "# Vendored by scripts/refresh-dashboard-vendor.sh from the npm registry; do not edit by hand."
    echo "# package version tarball-integrity"
    cat "$work/VERSIONS.body"
} >"$dest/VERSIONS"
echo "refresh-dashboard-vendor: wrote $dest/VERSIONS"
sed 's/^/refresh-dashboard-vendor:   /' "$dest/VERSIONS"
echo "refresh-dashboard-vendor: done"
