#!/bin/sh
# Build berth's .deb with dpkg-deb alone (no debhelper): npm run package:deb.
#   OUT_DIR   where the .deb goes (default: dist-pkg/ in the repository)
# Prints the path of the .deb on its last line.
set -eu

repo=$(cd "$(dirname "$0")/.." && pwd)
out=${OUT_DIR:-$repo/dist-pkg}
version=$(node -p "require('$repo/package.json').version")
pkg=berth_${version}_all.deb

command -v dpkg-deb >/dev/null || { echo "build-deb: dpkg-deb is missing (apt-get install dpkg)" >&2; exit 1; }

stage=$(mktemp -d "${TMPDIR:-/tmp}/berth-deb.XXXXXX")
trap 'rm -rf "$stage"' EXIT
root=$stage/root
lib=$root/usr/lib/berth

# The program: compiled JS, its templates and units, production dependencies only.
sh "$repo/packaging/build-lib.sh" "$lib"

# The command, its configuration, systemd units and the bus policy.
install -d "$root/usr/bin" "$root/etc/berth" "$root/lib/systemd/system" "$root/usr/share/dbus-1/system.d"
sed -e 's|@CONF@|/etc/berth/berth.conf|g' -e 's|@LIBDIR@|/usr/lib/berth|g' "$repo/packaging/wrapper.sh" >"$root/usr/bin/berth"
chmod 755 "$root/usr/bin/berth"
install -m 644 "$repo/packaging/berth.conf" "$root/etc/berth/berth.conf"
for u in "$repo"/units/*.service "$repo"/units/*.timer "$repo/packaging/berth-apply.service"; do install -m 644 "$u" "$root/lib/systemd/system/"; done
install -m 644 "$repo/units/org.berth.Manager1.conf" "$root/usr/share/dbus-1/system.d/"

# Manual, completion and docs, generated from the CLI that is being packaged.
install -d "$root/usr/share/man/man1" "$root/usr/share/bash-completion/completions" "$root/usr/share/doc/berth"
node "$repo/packaging/gen-man.mjs" "$lib/bin/berth.js" | gzip -9n >"$root/usr/share/man/man1/berth.1.gz"
node "$repo/packaging/gen-completion.mjs" "$lib/bin/berth.js" >"$root/usr/share/bash-completion/completions/berth"
install -m 644 "$repo/README.md" "$repo/packaging/debian/copyright" "$root/usr/share/doc/berth/"
[ -f "$repo/docs/packaging.md" ] && install -m 644 "$repo/docs/packaging.md" "$root/usr/share/doc/berth/"

# Control files.
install -d "$root/DEBIAN"
for s in postinst prerm postrm; do install -m 755 "$repo/packaging/debian/$s" "$root/DEBIAN/"; done
echo /etc/berth/berth.conf >"$root/DEBIAN/conffiles"
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -print | sed 's|^\./||' | LC_ALL=C sort | xargs -d '\n' md5sum) >"$root/DEBIAN/md5sums"
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
cat >"$root/DEBIAN/control" <<CONTROL
Package: berth
Version: $version
Architecture: all
Maintainer: berth maintainers <berth@localhost>
Installed-Size: $size
Depends: nodejs (>= 20.18), runc | crun, systemd, dbus, util-linux, attr
Recommends: skopeo, gnupg
Section: admin
Priority: optional
Description: system containers for systemd hosts
 berth installs the services a host needs before anything else runs from
 signed, read-only OCI images and hands them to systemd, without a container
 daemon: it pulls and verifies the image, checks it out read-only, renders an
 OCI config.json and a systemd unit, and drives systemd over D-Bus.
CONTROL

mkdir -p "$out"
dpkg-deb --root-owner-group -Zxz --build "$root" "$out/$pkg" >&2
echo "$out/$pkg"
