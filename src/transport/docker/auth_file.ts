/**
 * Registry credentials: an explicit USER:PASS, or the standard auth files
 * (containers-auth.json(5) and Docker's config.json): the first file with an
 * entry for the registry wins, and within a file the most specific key
 * (host/namespace/repo before host). Only inline `auth` entries are read;
 * credential helpers and identity tokens are not supported.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { BerthError, errnoCode } from '../../errors.ts';

export interface Credentials {
  readonly username: string;
  readonly password: string;
}

/** Normalised key -> credentials, for one file. */
export type AuthEntries = ReadonlyMap<string, Credentials>;

const MAX_AUTH_FILE_BYTES = 1024 * 1024;
const DOCKER_HUB_ALIASES = new Set(['index.docker.io', 'registry-1.docker.io', 'registry.hub.docker.com']);

export function parseCreds(value: string): Credentials {
  const colon = value.indexOf(':');
  if (colon <= 0) {
    throw new BerthError('USAGE', 'credentials must be USER:PASS', { hint: 'pass --creds USER:PASS, or log in with skopeo login / podman login' });
  }
  return { username: value.slice(0, colon), password: value.slice(colon + 1) };
}

/** The auth files to read, most important first. */
export function defaultAuthFiles(env: NodeJS.ProcessEnv = process.env, uid = process.getuid?.() ?? 0, home = os.homedir()): string[] {
  const files: string[] = [];
  if (env['REGISTRY_AUTH_FILE']) files.push(env['REGISTRY_AUTH_FILE']);
  files.push(env['XDG_RUNTIME_DIR'] ? path.join(env['XDG_RUNTIME_DIR'], 'containers', 'auth.json') : `/run/containers/${uid}/auth.json`);
  files.push(path.join(env['XDG_CONFIG_HOME'] || path.join(home, '.config'), 'containers', 'auth.json'));
  files.push(path.join(env['DOCKER_CONFIG'] || path.join(home, '.docker'), 'config.json'));
  return [...new Set(files)];
}

/**
 * A key as containers/image compares them: legacy keys with a scheme
 * ("https://index.docker.io/v1/") keep only their host; Docker Hub's aliases
 * become docker.io.
 */
export function normalizeAuthKey(key: string): string {
  let k = key.trim();
  const legacy = /^https?:\/\//i.test(k);
  if (legacy) k = k.replace(/^https?:\/\//i, '').split('/')[0] ?? '';
  k = k.replace(/\/+$/, '');
  const slash = k.indexOf('/');
  const host = slash < 0 ? k : k.slice(0, slash);
  const rest = slash < 0 ? '' : k.slice(slash);
  return `${DOCKER_HUB_ALIASES.has(host) ? 'docker.io' : host}${rest}`;
}

function bad(file: string, why: string): BerthError {
  return new BerthError('CONFIG_INVALID', `auth file ${file} is invalid: ${why}`, { hint: 'fix or remove the file (see containers-auth.json(5)), or pass --creds' });
}

/** Parse one auth file's bytes. Entries without inline credentials are skipped. */
export function parseAuthFile(bytes: Buffer | string, file: string): AuthEntries {
  let doc: unknown;
  try {
    doc = JSON.parse(typeof bytes === 'string' ? bytes : bytes.toString('utf8'));
  } catch (e) {
    throw bad(file, `not JSON (${(e as Error).message})`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw bad(file, 'not a JSON object');
  const auths = (doc as Record<string, unknown>)['auths'];
  const out = new Map<string, Credentials>();
  if (auths === undefined || auths === null) return out;
  if (typeof auths !== 'object' || Array.isArray(auths)) throw bad(file, '"auths" must be an object');
  for (const [key, entry] of Object.entries(auths as Record<string, unknown>)) {
    if (typeof entry !== 'object' || entry === null) throw bad(file, `"auths.${key}" must be an object`);
    const auth = (entry as Record<string, unknown>)['auth'];
    if (auth === undefined || auth === null || auth === '') continue; // e.g. a credential helper or identity token only
    if (typeof auth !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(auth)) throw bad(file, `"auths.${key}.auth" is not base64`);
    const decoded = Buffer.from(auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon <= 0) throw bad(file, `"auths.${key}.auth" does not decode to USER:PASS`);
    const normalized = normalizeAuthKey(key);
    // A key written with a scheme is the legacy form; a modern key for the same place wins.
    if (out.has(normalized) && /^https?:\/\//i.test(key)) continue;
    out.set(normalized, { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) });
  }
  return out;
}

/** The keys that may hold credentials for registry/repository, most specific first. */
export function lookupKeys(registry: string, repository: string): string[] {
  const host = normalizeAuthKey(registry);
  const parts = repository.split('/');
  const keys: string[] = [];
  for (let n = parts.length; n > 0; n--) keys.push(`${host}/${parts.slice(0, n).join('/')}`);
  keys.push(host);
  return keys;
}

export function findCredentials(files: readonly AuthEntries[], registry: string, repository: string): Credentials | undefined {
  const keys = lookupKeys(registry, repository);
  for (const entries of files) {
    for (const k of keys) {
      const c = entries.get(k);
      if (c !== undefined) return c;
    }
  }
  return undefined;
}

async function readAuthFile(file: string): Promise<AuthEntries | undefined> {
  let handle;
  try {
    handle = await fs.open(file, 'r');
  } catch (e) {
    const code = errnoCode(e);
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new BerthError('CONFIG_INVALID', `cannot read auth file ${file}: ${(e as Error).message}`, { hint: 'check its permissions', cause: e });
  }
  try {
    const { size } = await handle.stat();
    if (size > MAX_AUTH_FILE_BYTES) throw bad(file, `it is ${size} bytes, the limit is ${MAX_AUTH_FILE_BYTES}`);
    return parseAuthFile(await handle.readFile(), file);
  } finally {
    await handle.close();
  }
}

export interface CredentialOptions {
  creds?: string;
  /** Only this file (it must exist). */
  authFile?: string;
}

/**
 * A credentials lookup for one pull: explicit creds win; else the auth files,
 * read once (lazily) and consulted per registry/repository.
 */
export class CredentialStore {
  readonly #explicit: Credentials | undefined;
  readonly #authFile: string | undefined;
  #files: Promise<AuthEntries[]> | undefined;

  constructor(options: CredentialOptions = {}) {
    this.#explicit = options.creds === undefined ? undefined : parseCreds(options.creds);
    this.#authFile = options.authFile;
  }

  async lookup(registry: string, repository: string): Promise<Credentials | undefined> {
    if (this.#explicit !== undefined) return this.#explicit;
    this.#files ??= this.#load();
    return findCredentials(await this.#files, registry, repository);
  }

  async #load(): Promise<AuthEntries[]> {
    if (this.#authFile !== undefined) {
      const entries = await readAuthFile(this.#authFile);
      if (entries === undefined) throw new BerthError('CONFIG_INVALID', `auth file ${this.#authFile} does not exist`, { hint: 'give an existing auth.json' });
      return [entries];
    }
    const out: AuthEntries[] = [];
    for (const f of defaultAuthFiles()) {
      const entries = await readAuthFile(f);
      if (entries !== undefined) out.push(entries);
    }
    return out;
  }
}
