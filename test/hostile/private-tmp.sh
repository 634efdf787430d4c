#!/bin/sh
# private-tmp.sh DIR KEEP CMD ARGS...: run CMD with DIR as its /tmp. Run it in a
# mount namespace of its own (unshare --mount --propagation private -- sh
# private-tmp.sh ...): the mounts then vanish with the command.
#
# Why: the hostile cases check that berth writes nothing outside its
# directories. The machine's /tmp is written by every other program on it, so
# a check there flakes on a busy machine; DIR is written by berth alone and
# can be compared before and after a case.
#
# KEEP (the test's work dir, berth's root below it) stays at its own path when
# it is under /tmp: it is bind-mounted on DIR/<its path below /tmp>, which the
# caller creates (an empty directory, so the mount adds nothing to DIR itself).
set -eu
dir=$1 keep=$2
shift 2
case $keep in
  /tmp/*) mount -n --bind "$keep" "$dir/${keep#/tmp/}" ;;
esac
# -n: no /run/mount/utab; --rbind carries KEEP's mount along
mount -n --rbind "$dir" /tmp
exec "$@"
