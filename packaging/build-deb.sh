#!/bin/sh
# Build berth's .deb with dpkg-deb alone (no debhelper), laid out as the
# debhelper tools would: npm run package:deb.
#   OUT_DIR      where the .deb goes (default: dist-pkg/ in the repository)
#   DEBFULLNAME, DEBEMAIL  the Maintainer (default: berth maintainers <berth@example.org>)
# Prints the path of the .deb on its last line.
set -eu

repo=$(cd "$(dirname "$0")/.." && pwd)
out=${OUT_DIR:-$repo/dist-pkg}
version=$(node -p "require('$repo/package.json').version")
pkg=berth_${version}_all.deb
maintainer="${DEBFULLNAME:-berth maintainers} <${DEBEMAIL:-berth@example.org}>"
debian=$repo/packaging/debian

command -v dpkg-deb >/dev/null || { echo "build-deb: dpkg-deb is missing (apt-get install dpkg)" >&2; exit 1; }
# A native package: its changelog names this very version.
top=$(sed -n '1s/^berth (\([^)]*\)).*/\1/p' "$debian/changelog")
[ "$top" = "$version" ] || { echo "build-deb: packaging/debian/changelog is at $top, package.json at $version: add a changelog entry" >&2; exit 1; }
# Reproducible: file times are clamped to the changelog's date.
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(date -d "$(sed -n 's/^ -- .*>  //p' "$debian/changelog" | head -n1)" +%s)}
export SOURCE_DATE_EPOCH

stage=$(mktemp -d "${TMPDIR:-/tmp}/berth-deb.XXXXXX")
trap 'rm -rf "$stage"' EXIT
root=$stage/root
lib=$root/usr/lib/berth
doc=$root/usr/share/doc/berth

# The program: compiled JS, its templates and units, production dependencies
# trimmed to what runs (no native prebuilds, source maps, tests or docs).
sh "$repo/packaging/build-lib.sh" "$lib" /usr/lib/berth
# node runs it through the wrapper: no "#!/usr/bin/env -S node ..." line, not executable.
sed -i '1{/^#!/d}' "$lib/bin/berth.js"
chmod 644 "$lib/bin/berth.js"

# The command, its configuration, systemd units and the bus policy.
install -d "$root/usr/bin" "$root/etc/berth" "$root/lib/systemd/system" "$root/usr/share/dbus-1/system.d"
sed -e 's|@CONF@|/etc/berth/berth.conf|g' -e 's|@LIBDIR@|/usr/lib/berth|g' "$repo/packaging/wrapper.sh" >"$root/usr/bin/berth"
chmod 755 "$root/usr/bin/berth"
install -m 644 "$repo/packaging/berth.conf" "$root/etc/berth/berth.conf"
for u in "$repo"/units/*.service "$repo"/units/*.timer "$repo/packaging/berth-apply.service"; do install -m 644 "$u" "$root/lib/systemd/system/"; done
install -m 644 "$repo/units/org.berth.Manager1.conf" "$root/usr/share/dbus-1/system.d/"

# Manual pages (berth(8), one per command) and completion, generated from the
# CLI being packaged; docs and changelog compressed as dh_compress would.
install -d "$root/usr/share/man/man8" "$root/usr/share/bash-completion/completions" "$doc"
node "$repo/packaging/gen-man.mjs" --out "$root/usr/share/man/man8" "$lib/bin/berth.js"
gzip -9n "$root"/usr/share/man/man8/*.8
node "$repo/packaging/gen-completion.mjs" "$lib/bin/berth.js" >"$root/usr/share/bash-completion/completions/berth"
mv "$lib/copyright" "$doc/copyright"
chmod 644 "$doc/copyright"
install -m 644 "$debian/changelog" "$doc/changelog"
install -m 644 "$repo/README.md" "$repo/docs/packaging.md" "$doc/"
gzip -9n "$doc/changelog" "$doc/README.md" "$doc/packaging.md"

# Control files: maintainer scripts (deb-systemd-helper/-invoke, as
# dh_installsystemd writes them), every file under /etc a conffile, md5sums.
install -d "$root/DEBIAN"
for s in postinst prerm postrm; do install -m 755 "$debian/$s" "$root/DEBIAN/"; done
(cd "$root" && find etc -type f | LC_ALL=C sort | sed 's|^|/|') >"$root/DEBIAN/conffiles"
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -print | sed 's|^\./||' | LC_ALL=C sort | xargs -d '\n' md5sum) >"$root/DEBIAN/md5sums"
chmod 644 "$root/DEBIAN/conffiles" "$root/DEBIAN/md5sums"
size=$(du -sk --apparent-size --exclude=DEBIAN "$root" | cut -f1)
# util-linux (flock, nsenter) is Essential; mount and umount are in "mount".
cat >"$root/DEBIAN/control" <<CONTROL
Package: berth
Version: $version
Architecture: all
Maintainer: $maintainer
Installed-Size: $size
Depends: nodejs (>= 20.18), runc | crun, systemd, dbus, mount, attr
Recommends: skopeo, gnupg
Section: admin
Priority: optional
Description: system containers for systemd hosts
 berth installs the services a host needs before anything else runs from
 signed, read-only OCI images and hands them to systemd, without a container
 daemon: it pulls and verifies the image, checks it out read-only, renders an
 OCI config.json and a systemd unit, and drives systemd over D-Bus.
CONTROL

# Owned by root, no group/other write bits, times clamped for reproducibility.
find "$root" -newermt "@$SOURCE_DATE_EPOCH" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
chmod -R go-w "$root"
mkdir -p "$out"
dpkg-deb --root-owner-group -Zxz --build "$root" "$out/$pkg" >&2
echo "$out/$pkg"
