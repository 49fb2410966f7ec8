#!/usr/bin/env bash
# Fetch the Twemoji SVGs of the default sticker pack into DEST, once, through the npm
# registry with the ordinary client: npm package @twemoji/svg (artwork CC-BY 4.0 by
# Twitter, Inc. and other contributors; see THIRD_PARTY.md). Installs Debian's npm
# when it is missing. The tarball is checked against a pinned SHA-512.
#   scripts/fetch-twemoji.sh data/twemoji
set -euo pipefail
version=15.0.0  # engine/stickers/render.py TWEMOJI_VERSION
sha512=6523de7f607a9c16989df81d4db032e23816f79a3ba62db13c6c06094f96313c68ec9e81d6530f4d6c12abfc13ba232af8dd24850f7409cbd8a75c05a10a68ff
dest=${1:?usage: scripts/fetch-twemoji.sh DEST}

grep -qs "\"version\": \"$version\"" "$dest/package.json" && exit 0
command -v npm >/dev/null || "$(dirname "$0")/install-debian-packages.sh" npm

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "fetching @twemoji/svg@$version with npm into $dest"
(cd "$tmp" && npm pack --silent "@twemoji/svg@$version" >/dev/null)
tarball="$tmp/twemoji-svg-$version.tgz"
echo "$sha512  $tarball" | sha512sum --check --quiet
rm -rf "$dest.partial"
mkdir -p "$dest.partial"
tar -xzf "$tarball" -C "$dest.partial" --strip-components=1
rm -rf "$dest"
mv "$dest.partial" "$dest"
