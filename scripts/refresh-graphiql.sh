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
# shellcheck source=scripts/lib.sh
source "$repo_root/scripts/lib.sh"
vendor_start refresh-graphiql "$repo_root/jobql/static/graphiql"

graphiql="$(vendor_pack graphiql "$GRAPHIQL_VERSION")"
react="$(vendor_pack react "$REACT_VERSION")"
react_dom="$(vendor_pack react-dom "$REACT_DOM_VERSION")"
explorer="$(vendor_pack @graphiql/plugin-explorer "$PLUGIN_EXPLORER_VERSION")"
explorer_core="$(vendor_pack graphiql-explorer "$GRAPHIQL_EXPLORER_VERSION")"

# The plugin's UMD build reads the globals React, GraphiQL.React and GraphiQL.GraphQL, so it must load
# after graphiql.min.js; check that assumption here rather than in a browser.
if ! head -c 600 "$explorer/dist/index.umd.js" | grep -q 'GraphiQLPluginExplorer={},z.React,z.GraphiQL.React'; then
    echo "refresh-graphiql: @graphiql/plugin-explorer's UMD build no longer exports" \
        "GraphiQLPluginExplorer from the React/GraphiQL globals; check index.html" >&2
    exit 1
fi

echo "refresh-graphiql: copying into $dest"
vendor_copy "$graphiql/graphiql.min.js" graphiql.min.js
vendor_copy "$graphiql/graphiql.min.css" graphiql.min.css
vendor_copy "$graphiql/LICENSE" LICENSE.graphiql
vendor_copy "$react/umd/react.production.min.js" react.production.min.js
vendor_copy "$react/LICENSE" LICENSE.react
vendor_copy "$react_dom/umd/react-dom.production.min.js" react-dom.production.min.js
vendor_copy "$react_dom/LICENSE" LICENSE.react-dom
vendor_copy "$explorer/dist/index.umd.js" graphiql-plugin-explorer.umd.js
vendor_copy "$explorer/dist/style.css" graphiql-plugin-explorer.css
vendor_copy "$explorer_core/LICENSE" LICENSE.graphiql-explorer
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
vendor_wrote LICENSE.graphiql-plugin-explorer

vendor_versions scripts/refresh-graphiql.sh
