#!/bin/sh
# berth's command: reads @CONF@ (KEY=VALUE; only "root" is used) and runs
# berth from @LIBDIR@ with the system's node. $BERTH_ROOT and --root win.
if [ -z "${BERTH_ROOT:-}" ] && [ -r @CONF@ ]; then
  while IFS= read -r line || [ -n "$line" ]; do
    case $line in
      root=*) BERTH_ROOT=${line#root=}; export BERTH_ROOT ;;
    esac
  done < @CONF@
fi
# The node flag: see bin/berth.js.
exec node --max-semi-space-size=4 @LIBDIR@/bin/berth.js "$@"
