/**
 * containers-registries.conf(5), version 2 (and the old v1 tables, converted):
 * which registries short names are searched in, and per registry (by
 * longest matching prefix) its real location, whether it is insecure or
 * blocked, and the mirrors to try before it. This module only reads the
 * policy; the docker transport applies it.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { BerthError, errnoCode } from '../errors.ts';
import { readdirIfExists } from '../fsutil.ts';
import {
  dockerName, parseDockerReference, qualifyShortName,
  type DockerReference, type ShortNameReference,
} from './reference.ts';

export const DEFAULT_REGISTRIES_CONF = '/etc/containers/registries.conf';
const MAX_CONF_BYTES = 1024 * 1024;

export type PullFromMirror = 'all' | 'digest-only' | 'tag-only';

export interface MirrorEntry {
  readonly location: string;
  readonly insecure: boolean;
  readonly pullFromMirror: PullFromMirror;
}

export interface RegistryEntry {
  /** What references it applies to: host[:port][/namespace...] or *.domain. */
  readonly prefix: string;
  /** Where those references really live ('' for a wildcard prefix: unchanged). */
  readonly location: string;
  readonly insecure: boolean;
  readonly blocked: boolean;
  readonly mirrors: readonly MirrorEntry[];
}

export interface RegistriesConf {
  readonly unqualifiedSearchRegistries: readonly string[];
  readonly registries: readonly RegistryEntry[];
  /** Short name (no tag) -> fully qualified name. */
  readonly aliases: ReadonlyMap<string, string>;
  /** The files read, for messages. */
  readonly sources: readonly string[];
}

export const EMPTY_REGISTRIES_CONF: RegistriesConf = { unqualifiedSearchRegistries: [], registries: [], aliases: new Map(), sources: [] };

/** One place to try: the reference rewritten for a mirror or the primary location. */
export interface PullSource {
  readonly ref: DockerReference;
  /** registries.conf marks it insecure (plain HTTP / unverified TLS allowed). */
  readonly insecure: boolean;
  readonly mirror: boolean;
}

function bad(file: string, why: string): BerthError {
  return new BerthError('CONFIG_INVALID', `${file} is invalid: ${why}`, { hint: 'see containers-registries.conf(5)' });
}

type Table = Record<string, unknown>;
const isTable = (v: unknown): v is Table => typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);

function optString(t: Table, key: string, file: string, where: string): string | undefined {
  const v = t[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw bad(file, `${where}${key} must be a string`);
  return v;
}

function optBool(t: Table, key: string, file: string, where: string): boolean | undefined {
  const v = t[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'boolean') throw bad(file, `${where}${key} must be true or false`);
  return v;
}

function optStrings(t: Table, key: string, file: string, where: string): string[] | undefined {
  const v = t[key];
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw bad(file, `${where}${key} must be a list of strings`);
  return v as string[];
}

/** host[:port][/path...], no scheme; a registries.conf location or prefix. */
function checkLocation(value: string, file: string, what: string, allowWildcard: boolean): string {
  const v = value.replace(/\/+$/, '');
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(v)) throw bad(file, `${what} "${value}" must not have a scheme (write host[:port][/path])`);
  if (allowWildcard && v.startsWith('*.')) {
    if (!/^\*\.[a-zA-Z0-9.-]+$/.test(v)) throw bad(file, `${what} "${value}" is not a valid wildcard (write *.example.com)`);
    return v;
  }
  if (v === '' || /\s/.test(v) || v.includes('*')) throw bad(file, `${what} "${value}" is not host[:port][/path]`);
  return v;
}

function parseMirror(m: unknown, file: string, i: number): MirrorEntry {
  const where = `registry.mirror #${i + 1}: `;
  if (!isTable(m)) throw bad(file, `${where}must be a table`);
  const location = optString(m, 'location', file, where);
  if (location === undefined) throw bad(file, `${where}location is required`);
  const pull = optString(m, 'pull-from-mirror', file, where) ?? 'all';
  if (pull !== 'all' && pull !== 'digest-only' && pull !== 'tag-only') throw bad(file, `${where}pull-from-mirror must be all, digest-only or tag-only`);
  return { location: checkLocation(location, file, 'mirror location', false), insecure: optBool(m, 'insecure', file, where) ?? false, pullFromMirror: pull };
}

function parseRegistry(r: unknown, file: string, i: number): RegistryEntry {
  const where = `[[registry]] #${i + 1}: `;
  if (!isTable(r)) throw bad(file, `${where}must be a table`);
  const rawPrefix = optString(r, 'prefix', file, where);
  const rawLocation = optString(r, 'location', file, where);
  if (rawPrefix === undefined && rawLocation === undefined) throw bad(file, `${where}needs a prefix or a location`);
  const prefix = checkLocation(rawPrefix ?? rawLocation!, file, 'prefix', true);
  const wildcard = prefix.startsWith('*.');
  if (wildcard && rawLocation !== undefined && rawLocation !== '') throw bad(file, `${where}a wildcard prefix cannot have a location`);
  const location = wildcard ? '' : checkLocation(rawLocation ?? prefix, file, 'location', false);
  const mirrorsRaw = r['mirror'];
  if (mirrorsRaw !== undefined && !Array.isArray(mirrorsRaw)) throw bad(file, `${where}mirror must be a list of [[registry.mirror]] tables`);
  const byDigestOnly = optBool(r, 'mirror-by-digest-only', file, where) ?? false;
  const mirrors = (mirrorsRaw ?? []).map((m, j) => {
    const mirror = parseMirror(m, file, j);
    // The old registry-wide switch applies to mirrors that do not say otherwise.
    return byDigestOnly && mirror.pullFromMirror === 'all' ? { ...mirror, pullFromMirror: 'digest-only' as const } : mirror;
  });
  return { prefix, location, insecure: optBool(r, 'insecure', file, where) ?? false, blocked: optBool(r, 'blocked', file, where) ?? false, mirrors };
}

/** Version 1: [registries.search|insecure|block] registries = [...]. */
function fromV1(t: Table, file: string): { search: string[] | undefined; registries: RegistryEntry[] } {
  const list = (name: string): string[] => {
    const sub = t[name];
    if (sub === undefined) return [];
    if (!isTable(sub)) throw bad(file, `[registries.${name}] must be a table`);
    return (optStrings(sub, 'registries', file, `[registries.${name}] `) ?? []).map((h) => checkLocation(h, file, 'registry', false));
  };
  const search = t['search'] === undefined ? undefined : list('search');
  const insecure = new Set(list('insecure'));
  const blocked = new Set(list('block'));
  const registries = [...new Set([...insecure, ...blocked])].map((h) => ({ prefix: h, location: h, insecure: insecure.has(h), blocked: blocked.has(h), mirrors: [] }));
  return { search, registries };
}

interface PartialConf {
  search: string[] | undefined;
  registries: RegistryEntry[];
  aliases: Map<string, string>;
}

export function parseRegistriesConfText(text: string, file: string): PartialConf {
  let doc: Table;
  try {
    doc = parseToml(text) as Table;
  } catch (e) {
    throw bad(file, `not TOML (${(e as Error).message.split('\n')[0]})`);
  }
  const v1 = doc['registries'];
  const hasV2 = doc['registry'] !== undefined || doc['unqualified-search-registries'] !== undefined;
  let search: string[] | undefined;
  let registries: RegistryEntry[];
  if (v1 !== undefined) {
    if (hasV2) throw bad(file, 'mixes version 1 [registries.*] tables with version 2 settings');
    if (!isTable(v1)) throw bad(file, '[registries] must be a table');
    ({ search, registries } = fromV1(v1, file));
  } else {
    search = optStrings(doc, 'unqualified-search-registries', file, '')?.map((h) => checkLocation(h, file, 'search registry', false));
    const regs = doc['registry'];
    if (regs !== undefined && !Array.isArray(regs)) throw bad(file, 'registry must be a list of [[registry]] tables');
    registries = (regs ?? []).map((r, i) => parseRegistry(r, file, i));
  }
  const aliases = new Map<string, string>();
  const a = doc['aliases'];
  if (a !== undefined) {
    if (!isTable(a)) throw bad(file, '[aliases] must be a table');
    for (const [k, v] of Object.entries(a)) {
      if (typeof v !== 'string') throw bad(file, `alias "${k}" must be a string`);
      aliases.set(k, v);
    }
  }
  const seen = new Set<string>();
  for (const r of registries) {
    if (seen.has(r.prefix)) throw bad(file, `prefix "${r.prefix}" is configured twice`);
    seen.add(r.prefix);
  }
  return { search, registries, aliases };
}

/** Drop-ins override the main file: search list replaced, registries replaced by prefix, aliases merged. */
function merge(base: PartialConf, over: PartialConf): PartialConf {
  const registries = new Map(base.registries.map((r) => [r.prefix, r]));
  for (const r of over.registries) registries.set(r.prefix, r);
  return { search: over.search ?? base.search, registries: [...registries.values()], aliases: new Map([...base.aliases, ...over.aliases]) };
}

export function parseRegistriesConf(text: string, file = 'registries.conf'): RegistriesConf {
  return finish(parseRegistriesConfText(text, file), [file]);
}

function finish(p: PartialConf, sources: string[]): RegistriesConf {
  return { unqualifiedSearchRegistries: p.search ?? [], registries: p.registries, aliases: p.aliases, sources };
}

async function readConf(file: string): Promise<string | undefined> {
  let handle;
  try {
    handle = await fs.open(file, 'r');
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return undefined;
    throw new BerthError('CONFIG_INVALID', `cannot read ${file}: ${(e as Error).message}`, { hint: 'check the file\'s permissions', cause: e });
  }
  try {
    const { size } = await handle.stat();
    if (size > MAX_CONF_BYTES) throw bad(file, `it is ${size} bytes, the limit is ${MAX_CONF_BYTES}`);
    return (await handle.readFile()).toString('utf8');
  } finally {
    await handle.close();
  }
}

/**
 * Load the policy: `file` (an option), else $BERTH_REGISTRIES_CONF, else
 * /etc/containers/registries.conf plus its registries.conf.d/*.conf drop-ins.
 * A file named explicitly must exist; a missing default means "no policy".
 */
export async function loadRegistriesConf(file?: string, env: NodeJS.ProcessEnv = process.env): Promise<RegistriesConf> {
  const explicit = file ?? (env['BERTH_REGISTRIES_CONF'] || undefined);
  if (explicit !== undefined) {
    const text = await readConf(explicit);
    if (text === undefined) throw new BerthError('CONFIG_INVALID', `registries configuration ${explicit} does not exist`, { hint: 'give an existing file, or unset BERTH_REGISTRIES_CONF' });
    return parseRegistriesConf(text, explicit);
  }
  const main = await readConf(DEFAULT_REGISTRIES_CONF);
  let conf: PartialConf = main === undefined ? { search: undefined, registries: [], aliases: new Map() } : parseRegistriesConfText(main, DEFAULT_REGISTRIES_CONF);
  const sources = main === undefined ? [] : [DEFAULT_REGISTRIES_CONF];
  const dropDir = `${DEFAULT_REGISTRIES_CONF}.d`;
  const names = await readdirIfExists(dropDir);
  for (const name of names.filter((n) => n.endsWith('.conf')).sort()) {
    const f = path.join(dropDir, name);
    const text = await readConf(f);
    if (text === undefined) continue;
    conf = merge(conf, parseRegistriesConfText(text, f));
    sources.push(f);
  }
  return finish(conf, sources);
}

/** The reference as registries.conf prefixes see it: host/repo[:tag][@digest]. */
function refString(ref: DockerReference): string {
  return dockerName(ref);
}

/** Length of the prefix's match on `ref`, or -1. */
function matchLength(entry: RegistryEntry, ref: DockerReference): number {
  if (entry.prefix.startsWith('*.')) return ref.registry.endsWith(entry.prefix.slice(1)) ? entry.prefix.length : -1;
  const s = refString(ref);
  if (s === entry.prefix) return entry.prefix.length;
  // Only whole components match: "a.io/foo" covers "a.io/foo/bar" and "a.io/foo:1", not "a.io/foobar".
  if (s.startsWith(entry.prefix) && '/:@'.includes(s[entry.prefix.length]!)) return entry.prefix.length;
  return -1;
}

/** The [[registry]] entry for `ref`: the longest matching prefix. */
export function findRegistry(conf: RegistriesConf, ref: DockerReference): RegistryEntry | undefined {
  let best: RegistryEntry | undefined;
  let bestLen = -1;
  for (const r of conf.registries) {
    const n = matchLength(r, ref);
    if (n > bestLen) {
      best = r;
      bestLen = n;
    }
  }
  return best;
}

/** `ref` with the matched prefix replaced by `location`. */
function rewrite(ref: DockerReference, entry: RegistryEntry, location: string): DockerReference {
  const s = refString(ref);
  const matched = entry.prefix.startsWith('*.') ? ref.registry : entry.prefix;
  const target = `${location}${s.slice(matched.length)}`;
  try {
    const out = parseDockerReference(target);
    // A location without a host component would silently mean docker.io.
    if (!target.startsWith(`${out.registry}/`)) throw new Error('no registry host');
    return out;
  } catch (e) {
    throw new BerthError('CONFIG_INVALID', `${dockerName(ref)} rewritten by registries.conf prefix "${entry.prefix}" to "${target}" is not a valid reference`, {
      hint: 'locations must be host[:port][/namespace]',
      cause: e,
    });
  }
}

/**
 * Where to pull `ref` from, in order: the mirrors that apply, then the
 * primary location. Throws REGISTRY_BLOCKED for a blocked registry.
 */
export function pullSources(ref: DockerReference, conf: RegistriesConf): PullSource[] {
  const entry = findRegistry(conf, ref);
  if (entry === undefined) return [{ ref, insecure: false, mirror: false }];
  if (entry.blocked) {
    throw new BerthError('REGISTRY_BLOCKED', `pulling ${dockerName(ref)} is blocked by registries.conf (prefix "${entry.prefix}")`, {
      hint: `the host's policy forbids this registry (${conf.sources.join(', ') || 'registries.conf'}); use another one`,
    });
  }
  const byDigest = ref.digest !== undefined;
  const sources: PullSource[] = [];
  for (const m of entry.mirrors) {
    if (m.pullFromMirror === 'digest-only' && !byDigest) continue;
    if (m.pullFromMirror === 'tag-only' && byDigest) continue;
    sources.push({ ref: rewrite(ref, entry, m.location), insecure: m.insecure, mirror: true });
  }
  sources.push({ ref: entry.location === '' ? ref : rewrite(ref, entry, entry.location), insecure: entry.insecure, mirror: false });
  return sources;
}

/**
 * The fully qualified references a short name may mean, in the order to try
 * them: its alias alone when one is configured, else each search registry.
 */
export function shortNameCandidates(ref: ShortNameReference, conf: RegistriesConf): DockerReference[] {
  const alias = conf.aliases.get(ref.name);
  if (alias !== undefined) {
    let target: DockerReference;
    try {
      target = parseDockerReference(alias);
    } catch (e) {
      throw new BerthError('CONFIG_INVALID', `alias "${ref.name}" = "${alias}" in registries.conf is not a valid reference`, { hint: 'aliases map a short name to HOST/REPO[:TAG]', cause: e });
    }
    if (!alias.startsWith(`${target.registry}/`)) {
      throw new BerthError('CONFIG_INVALID', `alias "${ref.name}" = "${alias}" in registries.conf has no registry host`, { hint: 'aliases map a short name to HOST/REPO[:TAG]' });
    }
    // The user's tag or digest wins over one the alias has.
    const explicitTag = ref.digest !== undefined || ref.tag !== 'latest';
    return [{ ...target, tag: explicitTag ? ref.tag : target.tag ?? ref.tag, digest: ref.digest ?? (explicitTag ? undefined : target.digest) }];
  }
  if (conf.unqualifiedSearchRegistries.length === 0) {
    throw new BerthError('INVALID_REFERENCE', `"${ref.name}" is a short name and no unqualified-search-registries are configured${conf.sources.length ? ` in ${conf.sources.join(', ')}` : ''}`, {
      hint: `write the registry (e.g. docker://docker.io/${ref.name}), or set unqualified-search-registries in registries.conf`,
    });
  }
  return conf.unqualifiedSearchRegistries.map((registry) => qualifyShortName(ref, registry));
}
