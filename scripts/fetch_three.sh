#!/usr/bin/env bash
# three.js (MIT) from the npm registry, for pages that draw the avatar themselves; the agent serves it (no CDN).
# Only the files the page imports are kept, in web_client/vendor/three (ignored by git). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=0.187.0
DEST=web_client/vendor/three
[ -f "$DEST/.installed-$VERSION" ] && exit 0
if ! command -v npm >/dev/null 2>&1; then
  echo "== installing npm (for three.js)"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq npm >/dev/null
fi
echo "== fetching three.js $VERSION from npm"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
npm install --silent --no-audit --no-fund --no-save --prefix "$tmp" "three@$VERSION" >/dev/null
src="$tmp/node_modules/three"
rm -rf "$DEST"
mkdir -p "$DEST/build" "$DEST/examples/jsm/loaders" "$DEST/examples/jsm/utils"
cp "$src/LICENSE" "$src/package.json" "$DEST/"
cp "$src/build/three.module.js" "$src/build/three.core.js" "$DEST/build/"
cp "$src/examples/jsm/loaders/GLTFLoader.js" "$DEST/examples/jsm/loaders/"
cp "$src/examples/jsm/utils/BufferGeometryUtils.js" "$src/examples/jsm/utils/SkeletonUtils.js" "$DEST/examples/jsm/utils/"
# The add-ons import the bare name 'three', which needs an import map; a relative path works on any site.
sed -i "s#from 'three'#from '../../../build/three.module.js'#" "$DEST"/examples/jsm/*/*.js
touch "$DEST/.installed-$VERSION"
