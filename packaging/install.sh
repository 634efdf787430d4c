#!/bin/sh
# Install berth from this checkout on a non-Debian systemd host, or remove it.
#   sh packaging/install.sh              install (again: replaces the program, keeps berth.conf)
#   sh packaging/install.sh --uninstall  remove it (keeps /etc/berth and berth's state)
# Layout: /usr/local/lib/berth (program), /usr/local/bin/berth (command),
# /etc/systemd/system (units), /etc/dbus-1/system.d (bus policy),
# /etc/berth/berth.conf, /usr/local/share/{man/man8,bash-completion/completions}.
# DESTDIR=DIR installs below DIR instead, without host checks or systemctl (for packagers and tests).
set -eu

repo=$(cd "$(dirname "$0")/.." && pwd)
D=${DESTDIR:-}
lib=$D/usr/local/lib/berth
bin=$D/usr/local/bin/berth
conf=$D/etc/berth/berth.conf
unitdir=$D/etc/systemd/system
busdir=$D/etc/dbus-1/system.d
mandir=$D/usr/local/share/man/man8
compdir=$D/usr/local/share/bash-completion/completions
docdir=$D/usr/local/share/doc/berth
units="units/berth-agent.service units/berth-auto-update.service units/berth-auto-update.timer units/berth-publisher.service packaging/berth-apply.service"

die() { echo "berth install: $*" >&2; exit 1; }
systemd_running() { [ -z "$D" ] && [ -d /run/systemd/system ]; }

uninstall() {
  if systemd_running; then systemctl disable --now berth-auto-update.timer berth-agent.service berth-apply.service >/dev/null 2>&1 || true; fi
  for u in $units; do rm -f "$unitdir/${u##*/}"; done
  rm -f "$bin" "$busdir/org.berth.Manager1.conf" "$mandir"/berth.8 "$mandir"/berth-*.8 "$compdir/berth"
  rm -rf "$lib" "$lib.new" "$lib.old" "$docdir"
  if systemd_running; then systemctl daemon-reload; fi
  echo "berth removed; kept ${conf} and berth's state (/var/lib/berth)"
}

check_host() {
  command -v node >/dev/null || die "node is missing: install Node.js >= 20.18"
  node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 18) ? 0 : 1)' ||
    die "Node.js $(node --version) is too old: berth needs >= 20.18"
  command -v npm >/dev/null || die "npm is missing (it installs berth's dependencies)"
  [ -n "$D" ] && return 0
  [ "$(id -u)" = 0 ] || die "run as root (it installs into /usr/local and /etc)"
  command -v runc >/dev/null || command -v crun >/dev/null || die "neither runc nor crun is installed"
  [ -d /run/systemd/system ] || die "systemd is not running on this host"
  command -v nsenter >/dev/null || die "util-linux is missing"
}

install_berth() {
  check_host
  [ -x "$repo/node_modules/.bin/tsc" ] || die "run npm ci in $repo first (TypeScript compiles berth)"
  # Build the new tree beside the old one and swap them: a failed build leaves the installed berth alone.
  rm -rf "$lib.new" "$lib.old"
  sh "$repo/packaging/build-lib.sh" "$lib.new" /usr/local/lib/berth
  if [ -d "$lib" ]; then mv "$lib" "$lib.old"; fi
  mv "$lib.new" "$lib"
  rm -rf "$lib.old"

  mkdir -p "$(dirname "$bin")" "$(dirname "$conf")" "$unitdir" "$busdir" "$mandir" "$compdir" "$docdir"
  sed -e 's|@CONF@|/etc/berth/berth.conf|g' -e 's|@LIBDIR@|/usr/local/lib/berth|g' "$repo/packaging/wrapper.sh" >"$bin.new"
  chmod 755 "$bin.new"
  mv "$bin.new" "$bin"
  # The administrator's settings survive a reinstall.
  [ -e "$conf" ] || install -m 644 "$repo/packaging/berth.conf" "$conf"
  for u in $units; do
    sed -e 's|/usr/bin/berth|/usr/local/bin/berth|g' -e 's|/usr/share/doc/berth|/usr/local/share/doc/berth|g' "$repo/$u" >"$unitdir/${u##*/}"
    chmod 644 "$unitdir/${u##*/}"
  done
  install -m 644 "$repo/units/org.berth.Manager1.conf" "$busdir/"
  node "$repo/packaging/gen-man.mjs" --out "$mandir" "$lib/bin/berth.js"
  node "$repo/packaging/gen-completion.mjs" "$lib/bin/berth.js" >"$compdir/berth"
  install -m 644 "$repo/README.md" "$docdir/"
  if systemd_running; then systemctl daemon-reload; fi
  echo "berth $(node -p "require('$lib/package.json').version") installed: $bin"
  echo "  enable the agent and the update timer with: systemctl enable --now berth-agent.service berth-auto-update.timer"
}

case "${1:-}" in
  '') install_berth ;;
  --uninstall) uninstall ;;
  -h | --help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' ;;
  *) die "unknown argument $1 (use --uninstall or nothing)" ;;
esac
