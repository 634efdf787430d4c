#!/bin/sh
# Lay out berth's program tree in DIR (which must not exist yet): compiled JS,
# templates, units, package.json, bin/berth.js and the production
# dependencies, trimmed to what runs (prune-modules.mjs), with DIR/copyright
# listing every bundled package's licence (gen-copyright.mjs). The one recipe
# behind build-deb.sh (/usr/lib/berth) and install.sh (/usr/local/lib/berth).
#   sh packaging/build-lib.sh DIR [INSTALLED_AS]
# INSTALLED_AS: where DIR will be installed (for the copyright file's Files:
# patterns); default /usr/lib/berth.
set -eu

repo=$(cd "$(dirname "$0")/.." && pwd)
lib=${1:?usage: build-lib.sh DIR [INSTALLED_AS]}
installed_as=${2:-/usr/lib/berth}
[ -x "$repo/node_modules/.bin/tsc" ] || { echo "build-lib: run npm ci in $repo first (TypeScript compiles berth)" >&2; exit 1; }

mkdir -p "$lib/bin"
# Compiled straight into DIR (not the repository's dist/, which tests may be using).
(cd "$repo" && node_modules/.bin/tsc -p tsconfig.build.json --outDir "$lib/dist")
cp -R "$repo/templates" "$repo/units" "$lib/"
cp "$repo/package.json" "$repo/package-lock.json" "$lib/"
cp "$repo/bin/berth.js" "$lib/bin/"
# --ignore-scripts: no dependency runs code at build time. --omit=optional: dbus-next's
# native usocket (and its build tool chain) is unused by berth; the tree stays architecture-independent.
(cd "$lib" && npm ci --omit=dev --omit=optional --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
rm -f "$lib/package-lock.json"
# Licences first (prune-modules.mjs removes the licence files), then the trim.
node "$repo/packaging/gen-copyright.mjs" "$lib" "$installed_as" >"$lib/copyright"
node "$repo/packaging/prune-modules.mjs" "$lib"
