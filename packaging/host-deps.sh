#!/bin/sh
# Install the host packages berth and its test suite need, only those missing.
# Idempotent: when everything is present it only runs dpkg-query once.
set -eu

# gcc + libc6-dev: the corpus tests compile their notify-exec stand-in statically (libc.a is in libc6-dev,
# which gcc only recommends); lintian, mandoc, groff-base, man-db: the package and man page tests;
# python3-nacl: the cosign key tests check berth's key format against PyNaCl;
# glusterfs-server, glusterfs-client: the shared store tests (a real distributed filesystem, test/harness/gluster.ts).
PKGS="runc crun docker-registry skopeo gnupg busybox-static etcd-server etcd-client dbus systemd iproute2 util-linux umoci ostree zstd attr gcc libc6-dev lintian mandoc groff-base man-db python3-nacl glusterfs-server glusterfs-client"

missing=""
for p in $PKGS; do
  if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    missing="$missing $p"
  fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
  echo "berth: host packages missing:$missing; run this as root (sudo $0) to install them with apt" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "berth: host packages missing:$missing and no apt-get here; install them with the system's package manager" >&2
  exit 1
fi
echo "berth: installing host packages:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
# --no-install-recommends keeps it small; docker-registry must not be left
# running as a host service, so policy-rc.d forbids starting services.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod 755 "$policy"; created_policy=1
fi
trap '[ "$created_policy" = 1 ] && rm -f "$policy"' EXIT
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
