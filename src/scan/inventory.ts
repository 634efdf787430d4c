/**
 * The OS package inventory of a rootfs, read from its package databases
 * (never by running anything from the image):
 *  - dpkg: var/lib/dpkg/status, and var/lib/dpkg/status.d/* (one file per
 *    package, as distroless images keep them);
 *  - apk: lib/apk/db/installed;
 *  - rpm: NOT read. Its database is SQLite (rpmdb.sqlite), Berkeley DB
 *    (Packages) or ndb (Packages.db); Node 20 has no SQLite and berth will
 *    not carry a parser for any of them. A rootfs that has one is reported
 *    as an unscanned ecosystem, which the policy can block on.
 * The release comes from etc/os-release, else usr/lib/os-release.
 * Every database is untrusted: sizes and counts are capped, fields are
 * checked, and anything malformed fails the scan (SCAN_FAILED): a database
 * berth cannot read must not look like an empty one.
 */
import { BerthError } from '../errors.ts';
import { listRootfsDir, existsInRootfs, readRootfsFile } from './rootfs.ts';
import type { InstalledPackage } from './types.ts';

export interface OsRelease {
  id?: string;
  versionId?: string;
  idLike: string[];
  prettyName?: string;
}

export interface Inventory {
  os?: OsRelease;
  packages: InstalledPackage[];
  /** Package databases found and not read ("rpm (var/lib/rpm/rpmdb.sqlite)"). */
  unscanned: string[];
  /** Which databases were read ("dpkg", "apk"). */
  databases: string[];
}

export interface InventoryLimits {
  /** One database file (dpkg status, apk installed, os-release). */
  fileBytes: number;
  packages: number;
}

export const DEFAULT_INVENTORY_LIMITS: InventoryLimits = { fileBytes: 64 * 1024 * 1024, packages: 200_000 };

const HOSTILE_HINT = 'the image is malformed or hostile; do not use it';

function malformed(what: string, why: string): BerthError {
  return new BerthError('SCAN_FAILED', `cannot read ${what} in the image: ${why}`, { hint: HOSTILE_HINT });
}

const RPM_DATABASES = [
  'var/lib/rpm/rpmdb.sqlite',
  'var/lib/rpm/Packages',
  'var/lib/rpm/Packages.db',
  'usr/lib/sysimage/rpm/rpmdb.sqlite',
  'usr/lib/sysimage/rpm/Packages',
  'usr/lib/sysimage/rpm/Packages.db',
];

const utf8 = new TextDecoder('utf-8', { fatal: true });

function decode(bytes: Buffer, what: string): string {
  try {
    const text = utf8.decode(bytes);
    if (text.includes('\0')) throw malformed(what, 'it contains a NUL byte');
    return text;
  } catch (e) {
    if (e instanceof BerthError) throw e;
    throw malformed(what, 'it is not UTF-8 text');
  }
}

export async function readInventory(rootfs: string, limits: InventoryLimits = DEFAULT_INVENTORY_LIMITS): Promise<Inventory> {
  const os = await readOsRelease(rootfs, limits);
  const out: Inventory = { packages: [], unscanned: [], databases: [], ...(os === undefined ? {} : { os }) };
  const add = (pkgs: InstalledPackage[]): void => {
    if (out.packages.length + pkgs.length > limits.packages) throw malformed('the package databases', `more than ${limits.packages} packages`);
    out.packages.push(...pkgs);
  };

  const dpkgEco = ecosystemOf(os, 'Debian');
  const status = await readRootfsFile(rootfs, 'var/lib/dpkg/status', limits.fileBytes);
  let dpkgSeen = status !== undefined;
  if (status !== undefined) add(parseDpkgStatus(decode(status, '/var/lib/dpkg/status'), dpkgEco, os, '/var/lib/dpkg/status'));
  const statusD = await listRootfsDir(rootfs, 'var/lib/dpkg/status.d', limits.packages);
  for (const name of statusD ?? []) {
    if (name.startsWith('.') || name.endsWith('.md5sums')) continue;
    const what = `/var/lib/dpkg/status.d/${name}`;
    const bytes = await readRootfsFile(rootfs, `var/lib/dpkg/status.d/${name}`, limits.fileBytes);
    if (bytes === undefined) continue;
    dpkgSeen = true;
    add(parseDpkgStatus(decode(bytes, what), dpkgEco, os, what));
  }
  if (dpkgSeen) out.databases.push('dpkg');

  const apk = await readRootfsFile(rootfs, 'lib/apk/db/installed', limits.fileBytes);
  if (apk !== undefined) {
    out.databases.push('apk');
    add(parseApkInstalled(decode(apk, '/lib/apk/db/installed'), ecosystemOf(os, 'Alpine'), os));
  }

  for (const db of RPM_DATABASES) {
    if (await existsInRootfs(rootfs, db)) out.unscanned.push(`rpm (/${db})`);
  }
  return out;
}

// --- os-release --------------------------------------------------------------

/** os-release(5): etc/os-release wins over usr/lib/os-release. */
async function readOsRelease(rootfs: string, limits: InventoryLimits): Promise<OsRelease | undefined> {
  for (const rel of ['etc/os-release', 'usr/lib/os-release']) {
    const bytes = await readRootfsFile(rootfs, rel, Math.min(limits.fileBytes, 64 * 1024));
    if (bytes !== undefined) return parseOsRelease(decode(bytes, `/${rel}`));
  }
  return undefined;
}

export function parseOsRelease(text: string): OsRelease {
  const vars = new Map<string, string>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line);
    if (!m) continue; // os-release(5): lines that do not parse are ignored
    let value = m[2]!;
    const q = value[0];
    if ((q === '"' || q === "'") && value.length >= 2 && value.endsWith(q)) {
      value = value.slice(1, -1);
      if (q === '"') value = value.replace(/\\(["\\$`])/g, '$1');
    }
    vars.set(m[1]!, value);
  }
  const token = (v: string | undefined): string | undefined => (v !== undefined && /^[a-z0-9._-]{1,64}$/.test(v) ? v : undefined);
  const id = token(vars.get('ID'));
  const versionId = vars.get('VERSION_ID');
  const prettyName = vars.get('PRETTY_NAME');
  return {
    ...(id === undefined ? {} : { id }),
    ...(versionId !== undefined && /^[A-Za-z0-9._~-]{1,64}$/.test(versionId) ? { versionId } : {}),
    idLike: (vars.get('ID_LIKE') ?? '').split(/\s+/).filter((x) => token(x) !== undefined),
    ...(prettyName !== undefined ? { prettyName: prettyName.slice(0, 200) } : {}),
  };
}

/**
 * The OSV ecosystem of a package database's packages: "Debian:12",
 * "Ubuntu:22.04", "Alpine:v3.19"; the bare `fallback` ("Debian") when the
 * release is unknown (then only advisories that name no release match).
 */
export function ecosystemOf(os: OsRelease | undefined, fallback: 'Debian' | 'Alpine'): string {
  switch (os?.id) {
    case 'debian':
      // Debian testing/sid have no VERSION_ID.
      return os.versionId !== undefined ? `Debian:${os.versionId.split('.')[0]}` : 'Debian';
    case 'ubuntu':
      return os.versionId !== undefined ? `Ubuntu:${os.versionId}` : 'Ubuntu';
    case 'alpine': {
      const m = /^(\d+)\.(\d+)/.exec(os.versionId ?? '');
      return m ? `Alpine:v${m[1]}.${m[2]}` : 'Alpine';
    }
    default:
      return fallback;
  }
}

/** The distro qualifier of a purl: "debian-12", "alpine-3.19.1". */
function distroQualifier(os: OsRelease | undefined): string | undefined {
  if (os?.id === undefined) return undefined;
  return os.versionId !== undefined ? `${os.id}-${os.versionId}` : os.id;
}

// --- purl ----------------------------------------------------------------------

/** purl-spec percent-encoding of one component (":" stays, as the spec allows in versions). */
function purlEncode(s: string): string {
  return encodeURIComponent(s).replace(/%3A/g, ':');
}

export function purlOf(type: 'deb' | 'apk', namespace: string, name: string, version: string, qualifiers: [string, string | undefined][]): string {
  const q = qualifiers
    .filter((x): x is [string, string] => x[1] !== undefined && x[1] !== '')
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${purlEncode(v)}`)
    .join('&');
  return `pkg:${type}/${namespace}/${purlEncode(name)}@${purlEncode(version)}${q === '' ? '' : `?${q}`}`;
}

// --- dpkg ------------------------------------------------------------------------

/** Debian policy 5.6.1 (names) and 5.6.12 (versions, with an optional epoch). */
const DEB_NAME = /^[a-z0-9][a-z0-9+.-]{0,199}$/;
const DEB_VERSION = /^(?:[0-9]{1,9}:)?[A-Za-z0-9.+~-]{1,200}$/;
const DEB_ARCH = /^[a-z0-9-]{1,64}$/;

/** Control-file paragraphs: "Field: value" lines, continuation lines start with a space or tab. */
function paragraphs(text: string, what: string): Map<string, string>[] {
  const out: Map<string, string>[] = [];
  let current = new Map<string, string>();
  let last: string | undefined;
  const lines = text.split('\n');
  for (const [i, raw] of lines.entries()) {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line.trim() === '') {
      if (current.size > 0) out.push(current);
      current = new Map();
      last = undefined;
      continue;
    }
    if (line[0] === ' ' || line[0] === '\t') {
      if (last === undefined) throw malformed(what, `line ${i + 1}: a continuation line without a field`);
      current.set(last, `${current.get(last)!}\n${line.slice(1)}`);
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) throw malformed(what, `line ${i + 1}: not a "Field: value" line`);
    const field = line.slice(0, colon).toLowerCase();
    if (current.has(field)) throw malformed(what, `line ${i + 1}: field ${JSON.stringify(line.slice(0, Math.min(colon, 60)))} appears twice in one paragraph`);
    current.set(field, line.slice(colon + 1).trim());
    last = field;
  }
  if (current.size > 0) out.push(current);
  return out;
}

/**
 * dpkg's Status is "WANT FLAG STATUS". Files are on disk in every status
 * but not-installed and config-files, so those others count as installed:
 * a half-configured or held package is as vulnerable as an installed one.
 */
const DPKG_PRESENT = new Set(['installed', 'unpacked', 'half-configured', 'half-installed', 'triggers-awaited', 'triggers-pending']);

export function parseDpkgStatus(text: string, ecosystem: string, os: OsRelease | undefined, what: string): InstalledPackage[] {
  const out: InstalledPackage[] = [];
  for (const [n, p] of paragraphs(text, what).entries()) {
    const where = `paragraph ${n + 1}`;
    const name = p.get('package');
    if (name === undefined || !DEB_NAME.test(name)) throw malformed(what, `${where}: invalid or missing Package`);
    const status = p.get('status');
    // status.d files (distroless) have no Status: each file is an installed package.
    if (status !== undefined) {
      const words = status.split(/\s+/);
      if (words.length !== 3) throw malformed(what, `${where} (${name}): invalid Status ${JSON.stringify(status.slice(0, 80))}`);
      if (!DPKG_PRESENT.has(words[2]!)) continue;
    }
    const version = p.get('version');
    if (version === undefined || !DEB_VERSION.test(version)) throw malformed(what, `${where} (${name}): invalid or missing Version`);
    const arch = p.get('architecture');
    if (arch !== undefined && !DEB_ARCH.test(arch)) throw malformed(what, `${where} (${name}): invalid Architecture`);
    let source: string | undefined;
    let sourceVersion: string | undefined;
    const src = p.get('source');
    if (src !== undefined) {
      // "Source: name" or "Source: name (version)" when the binary's version differs.
      const m = /^([^\s(]+)(?:\s+\(([^)\s]+)\))?$/.exec(src);
      if (!m || !DEB_NAME.test(m[1]!) || (m[2] !== undefined && !DEB_VERSION.test(m[2]))) throw malformed(what, `${where} (${name}): invalid Source`);
      source = m[1]!;
      sourceVersion = m[2];
    }
    out.push({
      ecosystem,
      name,
      version,
      ...(source === undefined ? {} : { source }),
      ...(sourceVersion === undefined ? {} : { sourceVersion }),
      purl: purlOf('deb', os?.id ?? 'debian', name, version, [
        ['arch', arch],
        ['distro', distroQualifier(os)],
        ['upstream', source === undefined ? undefined : sourceVersion === undefined ? source : `${source}@${sourceVersion}`],
      ]),
    });
  }
  return out;
}

// --- apk -------------------------------------------------------------------------

const APK_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,199}$/;
const APK_VERSION = /^[A-Za-z0-9._~+-]{1,200}$/;

/** apk's installed database: paragraphs of "X:value" lines (P name, V version, o origin, A arch, and many more). */
export function parseApkInstalled(text: string, ecosystem: string, os: OsRelease | undefined): InstalledPackage[] {
  const what = '/lib/apk/db/installed';
  const out: InstalledPackage[] = [];
  let n = 0;
  for (const block of text.split(/\n[ \t]*\n/)) {
    if (block.trim() === '') continue;
    n++;
    const fields = new Map<string, string>();
    for (const line of block.split('\n')) {
      if (line === '') continue;
      if (line.length < 2 || line[1] !== ':') throw malformed(what, `entry ${n}: not a "X:value" line`);
      const key = line[0]!;
      // Only the package's own fields are single-valued; F:, R:, Z:... repeat per file.
      if ('PVoA'.includes(key) && fields.has(key)) throw malformed(what, `entry ${n}: field ${key} appears twice`);
      if (!fields.has(key)) fields.set(key, line.slice(2));
    }
    const name = fields.get('P');
    const version = fields.get('V');
    if (name === undefined || !APK_NAME.test(name)) throw malformed(what, `entry ${n}: invalid or missing P:`);
    if (version === undefined || !APK_VERSION.test(version)) throw malformed(what, `entry ${n} (${name}): invalid or missing V:`);
    const origin = fields.get('o');
    if (origin !== undefined && !APK_NAME.test(origin)) throw malformed(what, `entry ${n} (${name}): invalid o:`);
    const arch = fields.get('A');
    if (arch !== undefined && !/^[a-z0-9_-]{1,64}$/.test(arch)) throw malformed(what, `entry ${n} (${name}): invalid A:`);
    out.push({
      ecosystem,
      name,
      version,
      ...(origin === undefined ? {} : { source: origin }),
      purl: purlOf('apk', os?.id ?? 'alpine', name, version, [
        ['arch', arch],
        ['distro', distroQualifier(os)],
        ['upstream', origin],
      ]),
    });
  }
  return out;
}
