#!/bin/bash
# test-host.sh - the shell half of berth's test host (test/harness/test-host.ts drives it).
#
# A throw-away systemd runs as PID 1 of private pid+mount+cgroup+uts+ipc namespaces, on a
# host whose own PID 1 is not systemd (Debian 12, systemd 252, cgroup v1 "hybrid", root).
# The network namespace, /tmp and /work are the host's; /etc, /usr/local and /var are the
# host's seen through a copy-on-write overlay (writes stay in $BASE/overlay); /run, /dev,
# /etc/systemd/system and the cgroup tree are private.
#
# Environment (all subcommands):
#   TH_BASE     scratch dir on the host (keep it short: sockets below it must be < 108 bytes)
#   TH_CGROUP   name of the cgroup dirs created at the root of every host hierarchy
#   TH_PID      (enter/ctl/sh) host PID of the namespaced systemd; default: from launcher.pid
#
# Subcommands used by test-host.ts:
#   prepare           fill $TH_BASE: trimmed vendor units, journald drop-in, empty dirs
#   launch            join $TH_CGROUP, then exec unshare -> "__inner" -> systemd (foreground;
#                     test-host.ts spawns it in its own session and records its PID)
#   __inner           (PID 1 of the new namespaces) private mounts, then exec systemd
#   enter -- CMD...   join $TH_CGROUP/harness-exec, then nsenter CMD into the namespaces
# For debugging a running test host by hand:
#   pid | ctl ARGS... | sh CMD...
#
# The cgroup dirs themselves are created and removed by test-host.ts; it also writes
#   $TH_BASE/cgroups.list        "mountpoint super-options" of each cgroup v1 hierarchy
#   $TH_BASE/cgroup2.mp          mountpoint of the cgroup2 hierarchy (may be empty)
#   $TH_BASE/cgroup-links.list   "name target" of symlinks in /sys/fs/cgroup (cpu -> cpu,cpuacct)
#
# Host-side layout of $TH_BASE:
#   run/                  bind-mounted on /run inside (sockets are reachable from the host):
#     dbus/system_bus_socket   the system bus (dbus-daemon runs inside)
#     systemd/private          systemd's private socket: only usable from INSIDE the pid ns
#     log/journal/             volatile journal: journalctl -D $TH_BASE/run/log/journal
#   etc-systemd-system/   bind-mounted on /etc/systemd/system inside
#   units/                trimmed vendor units: the only unit dir besides /etc and /run ones
#   empty/                used as the (empty) generator path
#   systemd.log           stdout/stderr of the launcher and of systemd before journald runs
set -euo pipefail

BASE=${TH_BASE:?set TH_BASE to the test host scratch dir}
CGNAME=${TH_CGROUP:?set TH_CGROUP to the test host cgroup name}
SYSTEMD_BIN=${TH_SYSTEMD_BIN:-/lib/systemd/systemd}
SELF=$(readlink -f "$0")

# The only vendor units the booted systemd sees: targets, the shutdown path, dbus and
# journald. No udev, systemd-tmpfiles, sysctl, getty, ... so it cannot touch host devices,
# sysctls or /tmp, and nothing needs systemd-tmpfiles at boot (units that need a directory
# under /run must create it themselves, e.g. RuntimeDirectory=).
VENDOR_UNITS="basic.target sysinit.target sockets.target timers.target paths.target
 slices.target local-fs.target local-fs-pre.target swap.target network.target
 network-pre.target network-online.target nss-lookup.target remote-fs.target
 remote-fs-pre.target multi-user.target shutdown.target umount.target final.target
 poweroff.target halt.target reboot.target exit.target time-sync.target
 systemd-poweroff.service systemd-halt.service systemd-reboot.service
 systemd-exit.service dbus.socket dbus.service
 systemd-journald.service systemd-journald.socket systemd-journald-dev-log.socket"

# Sub-cgroup (of the test host's root cgroup) that processes started with `enter` join, so
# that they are inside the test host's cgroup tree (nsenter -C alone leaves them in the
# caller's cgroup, outside the namespace's root: runc would then compute odd cgroup paths).
EXEC_CG=harness-exec

ns_pid() {
  if [ -n "${TH_PID:-}" ]; then echo "$TH_PID"; return; fi
  local l
  l=$(cat "$BASE/launcher.pid" 2>/dev/null) || { echo "test host not running (no launcher.pid)" >&2; return 1; }
  # guard against a stale pid file whose PID was reused by something else
  tr '\0' ' ' < "/proc/$l/cmdline" 2>/dev/null | grep -q "^unshare .* __inner" \
    || { echo "test host not running (launcher $l gone)" >&2; return 1; }
  # unshare --fork: the launcher has exactly one child = PID 1 inside
  awk '{print $1}' "/proc/$l/task/$l/children"
}

cgroup_dirs() {   # prints the test host's root cgroup dir in every host hierarchy
  local mp opts
  while read -r mp opts; do echo "$mp/$CGNAME"; done < "$BASE/cgroups.list"
  mp=$(cat "$BASE/cgroup2.mp")
  if [ -n "$mp" ]; then echo "$mp/$CGNAME"; fi
}

prepare() {
  mkdir -p "$BASE"/{run,etc-systemd-system,units,empty}
  local u
  for u in $VENDOR_UNITS; do cp "/lib/systemd/system/$u" "$BASE/units/"; done
  ln -sf multi-user.target "$BASE/units/default.target"
  ln -sf reboot.target "$BASE/units/ctrl-alt-del.target"
  mkdir -p "$BASE/units/"{sockets,sysinit,multi-user}.target.wants
  ln -sf ../dbus.socket "$BASE/units/sockets.target.wants/dbus.socket"
  ln -sf ../dbus.service "$BASE/units/multi-user.target.wants/dbus.service"
  ln -sf ../systemd-journald.socket "$BASE/units/sockets.target.wants/systemd-journald.socket"
  ln -sf ../systemd-journald-dev-log.socket "$BASE/units/sockets.target.wants/systemd-journald-dev-log.socket"
  ln -sf ../systemd-journald.service "$BASE/units/sysinit.target.wants/systemd-journald.service"
  # Journal only in the host-visible $BASE/run/log/journal: never /var/log/journal (the
  # host's /var), never the host's kmsg/console. Storage=volatile means journald needs no
  # systemd-tmpfiles and no journal flush service.
  mkdir -p "$BASE/run/systemd/journald.conf.d" "$BASE/run/log/journal"
  printf '[Journal]\nStorage=volatile\nReadKMsg=no\nForwardToKMsg=no\nForwardToConsole=no\nForwardToWall=no\nForwardToSyslog=no\n' \
    > "$BASE/run/systemd/journald.conf.d/berth-test.conf"
}

launch() {   # becomes the "launcher" process (unshare), parent of the namespaced systemd
  local d
  # join the test host's cgroups first: unshare --cgroup makes them the root inside
  for d in $(cgroup_dirs); do echo $$ > "$d/cgroup.procs"; done
  # --kill-child: if the launcher dies (e.g. SIGKILL from its pdeathsig when the test
  # process dies), the namespaced systemd gets SIGKILL and the whole pid namespace goes.
  exec unshare --pid --fork --kill-child=SIGKILL --mount --mount-proc --propagation private \
       --cgroup --uts --ipc "$SELF" __inner
}

inner() {   # PID 1 of the new namespaces; ends by exec'ing systemd
  # FIRST make /run private: mount(8)/libmount would otherwise create /run/mount/utab on
  # the host's /run. All mounts below also use -n (no utab/mtab writes).
  mount -n --bind "$BASE/run" /run
  # read-only /sys without the host's submounts, then a fresh cgroup tree whose roots
  # are the test host's cgroups (thanks to the cgroup namespace)
  mount -n --bind /sys /sys
  mount -n -o remount,bind,ro,nosuid,nodev,noexec /sys
  mount -n -t tmpfs -o mode=755,nosuid,nodev,noexec tmpfs /sys/fs/cgroup
  local mp opts
  while read -r mp opts; do
    mkdir -p "$mp"
    mount -n -t cgroup -o "${opts#rw,}" cgroup "$mp"
  done < "$BASE/cgroups.list"
  mp=$(cat "$BASE/cgroup2.mp")
  if [ -n "$mp" ]; then mkdir -p "$mp"; mount -n -t cgroup2 cgroup2 "$mp"; fi
  # replicate co-mount symlinks such as cpu -> cpu,cpuacct if the host has them
  local name target
  while read -r name target; do
    if [ -n "$name" ]; then ln -sf "$target" "/sys/fs/cgroup/$name"; fi
  done < "$BASE/cgroup-links.list"
  mount -n -o remount,ro,nosuid,nodev,noexec /sys/fs/cgroup || true
  # no host-wide sysctl changes and no sysrq from inside
  mount -n --bind /proc/sys /proc/sys; mount -n -o remount,bind,ro /proc/sys
  if [ -e /proc/sysrq-trigger ]; then
    mount -n --bind /proc/sysrq-trigger /proc/sysrq-trigger
    mount -n -o remount,bind,ro /proc/sysrq-trigger
  fi
  # Copy-on-write /etc, /usr/local and /var: what berth writes there inside (tmpfiles.d,
  # host files from images, state directories) lands in $BASE/overlay/*/upper, never on
  # the host, and survives a stop/start like a real disk would (a "reboot").
  local d n
  for d in /etc /usr/local /var; do
    n=$(echo "$d" | tr / _)
    mkdir -p "$BASE/overlay/$n/upper" "$BASE/overlay/$n/work"
    mount -n -t overlay overlay -o "lowerdir=$d,upperdir=$BASE/overlay/$n/upper,workdir=$BASE/overlay/$n/work" "$d"
  done
  # private /etc/systemd/system (host dir $BASE/etc-systemd-system, survives reboots)
  mount -n --bind "$BASE/etc-systemd-system" /etc/systemd/system
  # private /dev (like systemd-nspawn): sockets and symlinks created by units (/dev/log)
  # must not land in the host's devtmpfs. Built on a staging tmpfs, then moved.
  local D="$BASE/devstage"; mkdir -p "$D"
  mount -n -t tmpfs -o mode=755,nosuid,size=4m tmpfs "$D"
  mknod -m 666 "$D/null" c 1 3; mknod -m 666 "$D/zero" c 1 5; mknod -m 666 "$D/full" c 1 7
  mknod -m 666 "$D/random" c 1 8; mknod -m 666 "$D/urandom" c 1 9; mknod -m 666 "$D/tty" c 5 0
  if [ -e /dev/net/tun ]; then mkdir -p "$D/net"; mknod -m 666 "$D/net/tun" c 10 200; fi
  if [ -e /dev/fuse ]; then mknod -m 666 "$D/fuse" c 10 229; fi
  mkdir -p "$D/pts" "$D/shm" "$D/mqueue"
  ln -s /proc/self/fd "$D/fd"; ln -s /proc/self/fd/0 "$D/stdin"
  ln -s /proc/self/fd/1 "$D/stdout"; ln -s /proc/self/fd/2 "$D/stderr"; ln -s pts/ptmx "$D/ptmx"
  mount -n --move "$D" /dev
  mount -n -t devpts -o newinstance,ptmxmode=0666,mode=620,gid=5 devpts /dev/pts
  mount -n -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm
  mount -n -t mqueue -o nosuid,nodev,noexec mqueue /dev/mqueue 2>/dev/null || true
  # container=... is ESSENTIAL: it makes systemd (and systemd-shutdown at poweroff) behave
  # as in a container. Without it, shutdown would try to remount filesystems read-only,
  # and a remount of a bind mount's superblock is shared with the host's root fs.
  export container=berth-test
  export SYSTEMD_UNIT_PATH="/etc/systemd/system:/run/systemd/system:/run/systemd/transient:$BASE/units"
  export SYSTEMD_GENERATOR_PATH="$BASE/empty" SYSTEMD_ENVIRONMENT_GENERATOR_PATH="$BASE/empty"
  exec "$SYSTEMD_BIN" --system --unit=multi-user.target --show-status=no \
       --log-target="${TH_LOG_TARGET:-journal}" --log-level="${TH_LOG_LEVEL:-info}"
}

join_exec_cgroup() {
  # Created on first use, not before boot: systemd removes empty child cgroups of its
  # root cgroup when it starts.
  local mp opts d
  while read -r mp opts; do
    d="$mp/$CGNAME/$EXEC_CG"
    if [ ! -d "$d" ]; then
      mkdir -p "$d"
      if [[ ",$opts," == *,cpuset,* ]]; then   # v1 cpuset: children start with no cpus/mems
        cat "$mp/$CGNAME/cpuset.cpus" > "$d/cpuset.cpus"
        cat "$mp/$CGNAME/cpuset.mems" > "$d/cpuset.mems"
      fi
    fi
    echo $$ > "$d/cgroup.procs"
  done < "$BASE/cgroups.list"
  mp=$(cat "$BASE/cgroup2.mp")
  if [ -n "$mp" ]; then mkdir -p "$mp/$CGNAME/$EXEC_CG"; echo $$ > "$mp/$CGNAME/$EXEC_CG/cgroup.procs"; fi
}

enter() {   # enter -- CMD ARGS...: run CMD inside the namespaces, in the test host's cgroups
  [ "${1:-}" = -- ] && shift
  local pid wd
  pid=$(ns_pid)
  join_exec_cgroup
  wd=${TH_CWD:-$PWD}
  unset TH_BASE TH_CGROUP TH_PID TH_CWD
  # -m mount ns (the test host's /run, /dev, /etc/systemd/system), -p pid ns (nsenter forks;
  # the child is in the pid ns), -C cgroup ns, -u uts, -i ipc. Network stays the host's.
  # --wd: setns(mount) resets the cwd to "/", so restore the caller's.
  exec nsenter -t "$pid" -m -p -C -u -i --wd="$wd" -- "$@"
}

case "${1:-}" in
  prepare) prepare ;;
  launch) launch ;;
  __inner) inner ;;
  enter) shift; enter "$@" ;;
  pid) ns_pid ;;
  ctl) shift; enter -- systemctl "$@" ;;
  sh) shift; enter -- "$@" ;;
  *) echo "usage: TH_BASE=DIR TH_CGROUP=NAME $0 prepare|launch|enter -- CMD...|pid|ctl ARGS...|sh CMD..." >&2; exit 2 ;;
esac
