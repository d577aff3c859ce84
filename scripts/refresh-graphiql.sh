#!/usr/bin/env bash
# Refresh the GraphiQL page's vendored assets in jobql/static/graphiql/ from npm.
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

echo "refresh-graphiql: copying into $dest"
copy "$graphiql/graphiql.min.js" graphiql.min.js
copy "$graphiql/graphiql.min.css" graphiql.min.css
copy "$graphiql/LICENSE" LICENSE.graphiql
copy "$react/umd/react.production.min.js" react.production.min.js
copy "$react/LICENSE" LICENSE.react
copy "$react_dom/umd/react-dom.production.min.js" react-dom.production.min.js
copy "$react_dom/LICENSE" LICENSE.react-dom

{
    echo "# Vendored by scripts/refresh-graphiql.sh from the npm registry; do not edit by hand."
    echo "# package version tarball-integrity"
    cat "$work/VERSIONS.body"
} >"$dest/VERSIONS"
echo "refresh-graphiql: wrote $dest/VERSIONS"
sed 's/^/refresh-graphiql:   /' "$dest/VERSIONS"
echo "refresh-graphiql: done"
