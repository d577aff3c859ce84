#!/usr/bin/env bash
# Refresh the GraphiQL page's vendored assets (graphiql, React, the Explorer plugin) in
# jobql/static/graphiql/ from npm.
#
# The built files are committed as package data so that `pip install jobql` and `jobql serve` need
# neither Node nor a CDN. This script is the only way they change: bump a version below, run it from
# anywhere, review the diff, commit. It needs `npm` and `tar`; it leaves no node_modules behind.
# index.html in the same directory is ours and is never touched.
set -euo pipefail

# Exact versions; graphiql stays on 3.x (its single-file UMD build needs React 18 globals).
GRAPHIQL_VERSION=3.9.0
REACT_VERSION=18.3.1
REACT_DOM_VERSION=18.3.1
# The Explorer plugin must match graphiql's @graphiql/react: graphiql 3.9.0 depends on
# @graphiql/react ^0.29.0, and 3.2.6 is the plugin release whose peer dependency is ^0.29.0 (4.x and
# 5.x are for graphiql 4/5). Its UMD build bundles graphiql-explorer (the plugin's only dependency,
# ^0.9.0, and 0.9.0 is the only 0.9 release); that package is fetched for its licence alone.
PLUGIN_EXPLORER_VERSION=3.2.6
GRAPHIQL_EXPLORER_VERSION=0.9.0

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="$repo_root/jobql/static/graphiql"
work="$(mktemp -d "${TMPDIR:-/tmp}/refresh-graphiql.XXXXXX")"
trap 'rm -rf "$work"' EXIT

echo "refresh-graphiql: target $dest"
echo "refresh-graphiql: working in $work"
mkdir -p "$dest"

# pack NAME VERSION -> prints the directory the tarball was extracted into.
# npm verifies the tarball against the registry's integrity hash; we record that hash in VERSIONS.
pack() {
    local name="$1" version="$2" json tarball integrity
    echo "refresh-graphiql: npm pack $name@$version" >&2
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
        echo "refresh-graphiql: expected file missing from the package: $src" >&2
        exit 1
    fi
    install -m 0644 "$src" "$dest/$name"
    printf 'refresh-graphiql:   %-32s %8s bytes\n' "$name" "$(wc -c <"$dest/$name")"
}

graphiql="$(pack graphiql "$GRAPHIQL_VERSION")"
react="$(pack react "$REACT_VERSION")"
react_dom="$(pack react-dom "$REACT_DOM_VERSION")"
explorer="$(pack @graphiql/plugin-explorer "$PLUGIN_EXPLORER_VERSION")"
explorer_core="$(pack graphiql-explorer "$GRAPHIQL_EXPLORER_VERSION")"

# The plugin's UMD build reads the globals React, GraphiQL.React and GraphiQL.GraphQL, so it must load
# after graphiql.min.js; check that assumption here rather than in a browser.
if ! head -c 600 "$explorer/dist/index.umd.js" | grep -q 'GraphiQLPluginExplorer={},z.React,z.GraphiQL.React'; then
    echo "refresh-graphiql: @graphiql/plugin-explorer's UMD build no longer exports" \
        "GraphiQLPluginExplorer from the React/GraphiQL globals; check index.html" >&2
    exit 1
fi

echo "refresh-graphiql: copying into $dest"
copy "$graphiql/graphiql.min.js" graphiql.min.js
copy "$graphiql/graphiql.min.css" graphiql.min.css
copy "$graphiql/LICENSE" LICENSE.graphiql
copy "$react/umd/react.production.min.js" react.production.min.js
copy "$react/LICENSE" LICENSE.react
copy "$react_dom/umd/react-dom.production.min.js" react-dom.production.min.js
copy "$react_dom/LICENSE" LICENSE.react-dom
copy "$explorer/dist/index.umd.js" graphiql-plugin-explorer.umd.js
copy "$explorer/dist/style.css" graphiql-plugin-explorer.css
copy "$explorer_core/LICENSE" LICENSE.graphiql-explorer
# The plugin's tarball ships no LICENSE file; its package.json says MIT and it is built from the
# graphql/graphiql monorepo, whose licence is the one graphiql's tarball carries.
{
    echo "@graphiql/plugin-explorer $PLUGIN_EXPLORER_VERSION declares \"license\": \"MIT\" in its package.json"
    echo "but its npm tarball carries no LICENSE file. It is built from the graphql/graphiql"
    echo "repository (packages/graphiql-plugin-explorer), whose MIT licence follows verbatim as"
    echo "shipped in graphiql $GRAPHIQL_VERSION. The bundled graphiql-explorer code is under"
    echo "LICENSE.graphiql-explorer."
    echo
    cat "$graphiql/LICENSE"
} >"$dest/LICENSE.graphiql-plugin-explorer"
printf 'refresh-graphiql:   %-32s %8s bytes\n' LICENSE.graphiql-plugin-explorer \
    "$(wc -c <"$dest/LICENSE.graphiql-plugin-explorer")"

{
    echo "# Vendored by scripts/refresh-graphiql.sh from the npm registry; do not edit by hand."
    echo "# package version tarball-integrity"
    cat "$work/VERSIONS.body"
} >"$dest/VERSIONS"
echo "refresh-graphiql: wrote $dest/VERSIONS"
sed 's/^/refresh-graphiql:   /' "$dest/VERSIONS"
echo "refresh-graphiql: done"
