#!/bin/sh
# berth's command: reads @CONF@ (KEY=VALUE: "root", "min-rate", "shared-store"
# and "shared-store-fallback") and runs berth from @LIBDIR@ with the system's
# node. The environment ($BERTH_ROOT, $BERTH_MIN_RATE, $BERTH_SHARED_STORE,
# $BERTH_SHARED_STORE_FALLBACK) and --root win over the file.
root_given=${BERTH_ROOT:+1}
rate_given=${BERTH_MIN_RATE:+1}
share_given=${BERTH_SHARED_STORE+1}
fallback_given=${BERTH_SHARED_STORE_FALLBACK:+1}
if [ -r @CONF@ ]; then
  while IFS= read -r line || [ -n "$line" ]; do
    case $line in
      root=*) [ -n "$root_given" ] || { BERTH_ROOT=${line#root=}; export BERTH_ROOT; } ;;
      min-rate=*) [ -n "$rate_given" ] || { BERTH_MIN_RATE=${line#min-rate=}; export BERTH_MIN_RATE; } ;;
      shared-store=*) [ -n "$share_given" ] || { BERTH_SHARED_STORE=${line#shared-store=}; export BERTH_SHARED_STORE; } ;;
      shared-store-fallback=*) [ -n "$fallback_given" ] || { BERTH_SHARED_STORE_FALLBACK=${line#shared-store-fallback=}; export BERTH_SHARED_STORE_FALLBACK; } ;;
    esac
  done < @CONF@
fi
# The node flag: see bin/berth.js.
exec node --max-semi-space-size=4 @LIBDIR@/bin/berth.js "$@"
