#!/bin/sh
# Builds the web UI into OUT (run by meson, src/web/ui/meson.build): the npm packages of
# package-lock.json into OUT/../ui-npm (npm ci; nothing is written into the source tree), the
# API's messages as static protobufjs code from proto/mvirt.proto (pbjs: no eval at run time,
# which the pages' Content-Security-Policy forbids) with its method table (pbjs -t json), then
# one esbuild bundle, app.js + app.css, and the static pages.
#   build.sh SRC_DIR OUT_DIR
set -eu
src=$1
out=$2
work=$(dirname "$out")/ui-npm
mkdir -p "$work" "$out"
if ! cmp -s "$src/package-lock.json" "$work/package-lock.json" || [ ! -d "$work/node_modules" ]; then
	cp "$src/package.json" "$src/package-lock.json" "$work/"
	(cd "$work" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error >/dev/null)
fi
proto=$src/../../../proto/mvirt.proto
mkdir -p "$work/gen"
"$work/node_modules/.bin/pbjs" -t static-module -w es6 --keep-case --no-comments \
	-o "$work/gen/mvirt_pb.js" "$proto"
"$work/node_modules/.bin/pbjs" -t json --keep-case -o "$work/gen/mvirt.json" "$proto"
NODE_PATH=$work/node_modules "$work/node_modules/.bin/esbuild" "$src/src/main.js" --bundle \
	--format=iife --target=es2020 --minify --sourcemap \
	--alias:mvirt-pb="$work/gen/mvirt_pb.js" --alias:mvirt-desc="$work/gen/mvirt.json" \
	--outfile="$out/app.js" --log-level=warning
cp "$src/index.html" "$src/../assets/login.html" "$src/../assets/login.js" \
	"$src/../assets/login.css" "$out/"
