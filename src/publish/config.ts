/**
 * The publisher's configuration, /etc/berth/publisher.conf: berth.conf's style
 * (`KEY=VALUE` lines, `#` comments, no quoting or expansion), repeatable keys
 * given once per line. The table PUBLISHER_KEYS is the one list of keys: the
 * parser, the docs (docs/publisher.md) and the errors follow it.
 */
import { readFile } from 'node:fs/promises';
import { BerthError } from '../errors.ts';
import { ifExists } from '../fsutil.ts';
import { SEVERITIES } from '../scan/policy.ts';
import type { ScanPolicy, Severity } from '../scan/types.ts';

export const DEFAULT_PUBLISHER_CONF = '/etc/berth/publisher.conf';
const MAX_CONF_BYTES = 1024 * 1024;

/** One watched repository: every tag of HOST/REPO, or only the tags listed. */
export interface WatchedRepository {
  /** "HOST[:PORT]/REPO" */
  name: string;
  /** undefined: every tag the registry lists */
  tags?: string[];
}

export interface PublisherConfig {
  share: string | undefined;
  repositories: WatchedRepository[];
  /** seconds between polls of each repository's tag list */
  pollInterval: number;
  /** the longest wait after failed polls (doubling from pollInterval) */
  pollMaxBackoff: number;
  /** HOST:PORT the webhook endpoint listens on; undefined: no webhook, polling only */
  listen: string | undefined;
  /** a file whose first line is the token notifications must carry (Authorization: Bearer TOKEN) */
  tokenFile: string | undefined;
  /** the publisher's secret signing key, and its passphrase file */
  key: string | undefined;
  passphraseFile: string | undefined;
  scan: ScanPolicy;
  /** approved digests kept per repository */
  keep: number;
  /** seconds an image that left the last `keep` stays on the share (hosts may still run it) */
  grace: number;
  /** the trust policy the publisher pulls under, registries.d, TLS */
  policy: string | undefined;
  registriesDir: string | undefined;
  tlsVerify: boolean | undefined;
  certDir: string | undefined;
}

type Setter = (c: PublisherConfig, value: string, bad: (why: string) => BerthError) => void;

const seconds = (value: string, bad: (why: string) => BerthError): number => {
  const m = /^(\d{1,9})(s|m|h|d)?$/.exec(value);
  if (!m) throw bad('not a duration (N, Ns, Nm, Nh or Nd)');
  const n = Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[(m[2] ?? 's') as 's'];
  if (n === 0) throw bad('must be more than 0');
  return n;
};

const bool = (value: string, bad: (why: string) => BerthError): boolean => {
  if (value === 'true' || value === 'yes') return true;
  if (value === 'false' || value === 'no') return false;
  throw bad('not true or false');
};

export function parseWatched(value: string, bad: (why: string) => BerthError): WatchedRepository {
  const v = value.replace(/^docker:\/\//, '');
  const m = /^([a-zA-Z0-9.-]+(?::\d{1,5})?)\/([a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)(?::([\w][\w.-]{0,127}(?:,[\w][\w.-]{0,127})*))?$/.exec(v);
  if (!m) throw bad('not HOST[:PORT]/REPO or HOST[:PORT]/REPO:TAG[,TAG…]');
  return { name: `${m[1]}/${m[2]}`, ...(m[3] === undefined ? {} : { tags: m[3].split(',') }) };
}

/** Every key the file may set. */
export const PUBLISHER_KEYS: Record<string, { describe: string; repeat?: boolean; set: Setter }> = {
  share: { describe: 'the share, mounted read-write on the publisher only', set: (c, v) => void (c.share = v) },
  repository: {
    describe: 'a repository to watch: HOST[:PORT]/REPO (every tag) or HOST[:PORT]/REPO:TAG[,TAG…]',
    repeat: true,
    set: (c, v, bad) => void c.repositories.push(parseWatched(v, bad)),
  },
  'poll-interval': { describe: 'time between polls of the tag lists (N[s|m|h|d])', set: (c, v, bad) => void (c.pollInterval = seconds(v, bad)) },
  'poll-max-backoff': { describe: 'longest wait after failed polls', set: (c, v, bad) => void (c.pollMaxBackoff = seconds(v, bad)) },
  listen: {
    describe: 'HOST:PORT of the webhook endpoint for the registry notifications',
    set: (c, v, bad) => {
      if (!/^[a-zA-Z0-9.:[\]-]+:\d{1,5}$/.test(v)) throw bad('not HOST:PORT');
      c.listen = v;
    },
  },
  'token-file': { describe: 'file whose first line notifications must carry as Authorization: Bearer TOKEN', set: (c, v) => void (c.tokenFile = v) },
  key: { describe: "the publisher's secret signing key (gpg --export-secret-keys)", set: (c, v) => void (c.key = v) },
  'passphrase-file': { describe: "file whose first line unlocks the key", set: (c, v) => void (c.passphraseFile = v) },
  'block-at': {
    describe: 'findings at or above this severity block: low, medium, high, critical (unset: nothing blocks)',
    set: (c, v, bad) => {
      if (!(SEVERITIES as readonly string[]).includes(v)) throw bad(`not one of ${SEVERITIES.join(', ')}`);
      c.scan = { ...c.scan, blockAt: v as Severity };
    },
  },
  allow: { describe: 'an advisory id (or alias) that never blocks', repeat: true, set: (c, v) => void (c.scan = { ...c.scan, allow: [...c.scan.allow, v] }) },
  'osv-dir': { describe: 'directory of OSV advisories (JSON) to match packages against', set: (c, v) => void (c.scan = { ...c.scan, osvDir: v }) },
  'scan-hook': { describe: 'an external scanner command, given the rootfs path', repeat: true, set: (c, v) => void (c.scan = { ...c.scan, hooks: [...c.scan.hooks, v] }) },
  'block-unscanned': { describe: 'block images with a package database the scan cannot read (rpm)', set: (c, v, bad) => void (c.scan = { ...c.scan, blockUnscanned: bool(v, bad) }) },
  'scan-hook-timeout': { describe: "each scan hook's time limit (N[s|m|h|d])", set: (c, v, bad) => void (c.scan = { ...c.scan, hookTimeoutMs: seconds(v, bad) * 1000 }) },
  keep: {
    describe: 'approved digests kept per repository',
    set: (c, v, bad) => {
      if (!/^[1-9]\d{0,5}$/.test(v)) throw bad('not a number from 1');
      c.keep = Number(v);
    },
  },
  grace: { describe: 'how long an image that left the last `keep` stays (N[s|m|h|d])', set: (c, v, bad) => void (c.grace = seconds(v, bad)) },
  policy: { describe: 'the trust policy the publisher pulls under', set: (c, v) => void (c.policy = v) },
  'registries.d': { describe: 'look-aside configuration for the pulls', set: (c, v) => void (c.registriesDir = v) },
  'tls-verify': { describe: 'require HTTPS and verified certificates', set: (c, v, bad) => void (c.tlsVerify = bool(v, bad)) },
  'cert-dir': { describe: 'CA and client certificates for the registries', set: (c, v) => void (c.certDir = v) },
};

export function defaultConfig(): PublisherConfig {
  return {
    share: undefined,
    repositories: [],
    pollInterval: 300,
    pollMaxBackoff: 3600,
    listen: undefined,
    tokenFile: undefined,
    key: undefined,
    passphraseFile: undefined,
    scan: { allow: [], hooks: [] },
    keep: 3,
    grace: 7 * 86400,
    policy: undefined,
    registriesDir: undefined,
    tlsVerify: undefined,
    certDir: undefined,
  };
}

/** Parse the text of a publisher.conf named `file` (for messages). */
export function parsePublisherConfig(text: string, file: string): PublisherConfig {
  const c = defaultConfig();
  const seen = new Set<string>();
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const where = `${file}:${i + 1}`;
    const eq = line.indexOf('=');
    if (eq <= 0) throw new BerthError('CONFIG_INVALID', `${where}: not KEY=VALUE`, { hint: 'see docs/publisher.md for the keys' });
    const key = line.slice(0, eq).trim();
    const value = line.slice(eq + 1).trim();
    const spec = Object.prototype.hasOwnProperty.call(PUBLISHER_KEYS, key) ? PUBLISHER_KEYS[key] : undefined;
    if (spec === undefined) throw new BerthError('CONFIG_INVALID', `${where}: unknown key ${JSON.stringify(key.slice(0, 80))}`, { hint: `known keys: ${Object.keys(PUBLISHER_KEYS).join(', ')}` });
    if (!spec.repeat && seen.has(key)) throw new BerthError('CONFIG_INVALID', `${where}: ${key} is set twice`, { hint: 'give it once' });
    seen.add(key);
    if (value === '') throw new BerthError('CONFIG_INVALID', `${where}: ${key} has no value`, { hint: 'remove the line for the default' });
    spec.set(c, value, (why) => new BerthError('CONFIG_INVALID', `${where}: ${key}=${value.slice(0, 200)}: ${why}`, { hint: spec.describe }));
  }
  return c;
}

/** Read `file`; a missing file is the defaults unless `required` (it was named on the command line). */
export async function loadPublisherConfig(file: string, required: boolean): Promise<PublisherConfig> {
  let bytes;
  try {
    bytes = await ifExists(readFile(file));
  } catch (e) {
    throw new BerthError('CONFIG_INVALID', `cannot read ${file}: ${(e as Error).message}`, { hint: 'check its permissions' });
  }
  if (bytes === undefined) {
    if (required) throw new BerthError('CONFIG_INVALID', `${file} does not exist`, { hint: `write one (see docs/publisher.md), or leave --config out for ${DEFAULT_PUBLISHER_CONF}` });
    return defaultConfig();
  }
  if (bytes.length > MAX_CONF_BYTES) throw new BerthError('CONFIG_INVALID', `${file} is larger than ${MAX_CONF_BYTES} bytes`);
  return parsePublisherConfig(bytes.toString('utf8'), file);
}
