/**
 * containers-registries.d(5): where the signatures of registry images live.
 * Every *.yaml file in the directory is merged; a scope (or default-docker)
 * defined in two files is an error, as in containers/image. For an image, the
 * most specific `docker` scope that names a URL for the purpose wins, then
 * `default-docker`, then containers/image's built-in store.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { BerthError, errnoCode } from '../errors.ts';
import { encodedOf, algorithmOf, type Digest } from '../image/digest.ts';
import type { DockerReference } from '../image/reference.ts';
import { dockerScopes } from '../transport/docker/scopes.ts';

export const DEFAULT_REGISTRIES_DIR = '/etc/containers/registries.d';
/** Where containers/image (skopeo, podman) keep signatures when nothing is configured, for root. */
export const BUILTIN_LOOKASIDE = 'file:///var/lib/containers/sigstore';
const MAX_CONFIG_BYTES = 1024 * 1024;

export interface LookasideSection {
  /** lookaside, or the older sigstore: for reading (and writing when no staging URL is set). */
  readonly read: string | undefined;
  /** lookaside-staging, or the older sigstore-staging: for writing only. */
  readonly staging: string | undefined;
  /** use-sigstore-attachments: read (and write) sigstore signatures in the registry; undefined when the section does not say. */
  readonly useSigstoreAttachments: boolean | undefined;
  /** The file that defines it. */
  readonly file: string;
}

export interface RegistriesConfig {
  readonly defaultDocker: LookasideSection | undefined;
  readonly docker: ReadonlyMap<string, LookasideSection>;
}

export interface LookasideBase {
  /** The store's top-level URL, as configured. */
  readonly url: string;
  /** Which configuration chose it, for messages. */
  readonly from: string;
}

const configError = (file: string, why: string): BerthError =>
  new BerthError('CONFIG_INVALID', `signature store configuration ${file} is invalid: ${why}`, {
    hint: 'fix the file (see containers-registries.d(5))',
  });

function section(v: unknown, file: string, where: string): LookasideSection {
  if (v === null || v === undefined) return { read: undefined, staging: undefined, useSigstoreAttachments: undefined, file };
  if (typeof v !== 'object' || Array.isArray(v)) throw configError(file, `${where} is not a mapping`);
  const o = v as Record<string, unknown>;
  const url = (k: string): string | undefined => {
    const s = o[k];
    if (s === undefined || s === null || s === '') return undefined;
    if (typeof s !== 'string') throw configError(file, `${where}.${k} is not a string`);
    return s;
  };
  const attachments = o['use-sigstore-attachments'];
  if (attachments !== undefined && attachments !== null && typeof attachments !== 'boolean') throw configError(file, `${where}.use-sigstore-attachments is not true or false`);
  // Other keys concern features berth does not have; they are left alone.
  return {
    read: url('lookaside') ?? url('sigstore'),
    staging: url('lookaside-staging') ?? url('sigstore-staging'),
    useSigstoreAttachments: typeof attachments === 'boolean' ? attachments : undefined,
    file,
  };
}

/** Loads and merges the directory; a missing directory is an empty configuration. Throws CONFIG_INVALID. */
export async function loadRegistriesConfig(dir: string = DEFAULT_REGISTRIES_DIR): Promise<RegistriesConfig> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => n.endsWith('.yaml')).sort();
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return { defaultDocker: undefined, docker: new Map() };
    throw new BerthError('CONFIG_INVALID', `cannot read the signature store configuration ${dir}: ${(e as Error).message}`, { cause: e });
  }
  let defaultDocker: LookasideSection | undefined;
  const docker = new Map<string, LookasideSection>();
  for (const name of names) {
    const file = path.join(dir, name);
    let text: string;
    try {
      const bytes = await readFile(file);
      if (bytes.length > MAX_CONFIG_BYTES) throw configError(file, `larger than ${MAX_CONFIG_BYTES} bytes`);
      text = bytes.toString('utf8');
    } catch (e) {
      if (e instanceof BerthError) throw e;
      throw new BerthError('CONFIG_INVALID', `cannot read ${file}: ${(e as Error).message}`, { cause: e });
    }
    let doc: unknown;
    try {
      doc = parseYaml(text, { uniqueKeys: true, maxAliasCount: 100 });
    } catch (e) {
      throw configError(file, (e as Error).message.split('\n')[0] ?? 'YAML error');
    }
    if (doc === null || doc === undefined) continue;
    if (typeof doc !== 'object' || Array.isArray(doc)) throw configError(file, 'the top level is not a mapping');
    const top = doc as Record<string, unknown>;
    if (top['default-docker'] !== undefined) {
      if (defaultDocker !== undefined) throw configError(file, `default-docker is also defined in ${defaultDocker.file}`);
      defaultDocker = section(top['default-docker'], file, 'default-docker');
    }
    const scopes = top['docker'];
    if (scopes === undefined || scopes === null) continue;
    if (typeof scopes !== 'object' || Array.isArray(scopes)) throw configError(file, 'docker is not a mapping');
    for (const [scope, v] of Object.entries(scopes as Record<string, unknown>)) {
      const prior = docker.get(scope);
      if (prior !== undefined) throw configError(file, `docker scope ${JSON.stringify(scope)} is also defined in ${prior.file}`);
      docker.set(scope, section(v, file, `docker[${JSON.stringify(scope)}]`));
    }
  }
  return { defaultDocker, docker };
}

/** The store to read `ref`'s signatures from (`write`: to add signatures to). */
export function lookasideBase(config: RegistriesConfig, ref: DockerReference, write: boolean): LookasideBase {
  const pick = (s: LookasideSection): string | undefined => (write ? (s.staging ?? s.read) : s.read);
  for (const scope of dockerScopes(ref)) {
    const s = config.docker.get(scope);
    const url = s === undefined ? undefined : pick(s);
    if (url !== undefined) return { url, from: `docker scope ${JSON.stringify(scope)} in ${s!.file}` };
  }
  const d = config.defaultDocker === undefined ? undefined : pick(config.defaultDocker);
  if (d !== undefined) return { url: d, from: `default-docker in ${config.defaultDocker!.file}` };
  return { url: BUILTIN_LOOKASIDE, from: 'the built-in default (nothing configured in registries.d)' };
}

/**
 * Whether sigstore signatures of `ref` live in its registry (cosign's
 * `sha256-HEX.sig` attachments, and Sigstore bundles as referrers): the most
 * specific docker scope that sets use-sigstore-attachments decides, then
 * default-docker; off when nothing says (as containers/image).
 */
export function useSigstoreAttachments(config: RegistriesConfig, ref: DockerReference): boolean {
  for (const scope of dockerScopes(ref)) {
    const v = config.docker.get(scope)?.useSigstoreAttachments;
    if (v !== undefined) return v;
  }
  return config.defaultDocker?.useSigstoreAttachments ?? false;
}

/**
 * The URL of signature `index` (1-based) of the manifest `digest` of `ref`:
 * BASE/REPOSITORY@ALGO=HEX/signature-N (the repository without the host, as containers/image lays it out).
 */
export function signatureUrl(base: string, ref: DockerReference, digest: Digest, index: number): URL {
  let url: URL;
  try {
    url = new URL(base);
  } catch {
    throw new BerthError('CONFIG_INVALID', `signature store URL ${JSON.stringify(base)} is not a URL`, {
      hint: 'use file:///DIR or https://HOST/PATH in registries.d',
    });
  }
  if (url.protocol === 'file:' && url.host !== '' && url.host !== 'localhost') {
    throw new BerthError('CONFIG_INVALID', `signature store URL ${base} names a host; a file: URL is file:///ABSOLUTE/PATH`, { hint: 'use file:///DIR' });
  }
  if (url.search !== '' || url.hash !== '') {
    throw new BerthError('CONFIG_INVALID', `signature store URL ${base} has a query or fragment`, { hint: 'use file:///DIR or https://HOST/PATH' });
  }
  const basePath = url.pathname.replace(/\/+$/, '');
  url.pathname = `${basePath}/${ref.repository}@${algorithmOf(digest)}=${encodedOf(digest)}/signature-${index}`;
  return url;
}
