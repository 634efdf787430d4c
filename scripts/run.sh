#!/bin/sh
# Entry point of `npm test` and `npm run demo` on a fresh clone: installs what
# is missing (npm dependencies, host packages when root), then runs.
set -eu
cd "$(dirname "$0")/.."

# npm dependencies: install when node_modules is missing or older than the lock file.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi

if [ "$(id -u)" = 0 ]; then
  sh packaging/host-deps.sh
else
  echo "berth: not root: skipping host packages; the end-to-end tests and the demo need root" >&2
fi

# Compile (this also type-checks): bin/berth.js runs dist/ when it is there,
# so tests and the demo exercise what a package ships, with a fast start.
rm -rf dist
npx tsc -p tsconfig.build.json

case "${1:-}" in
  test)
    shift
    # Unit tests (pure logic) and the end-to-end suite (a real systemd test
    # host and registry), one file at a time: the 2-core CI machine is small.
    exec node --import tsx --test --test-concurrency=1 --test-timeout=600000 test/unit/*.test.ts test/hostile/*.test.ts test/e2e/*.test.ts
    ;;
  demo)
    shift
    exec node --import tsx scripts/demo.ts "$@"
    ;;
  *)
    echo "usage: scripts/run.sh test|demo" >&2
    exit 2
    ;;
esac
