/**
 * containers-policy.json(5): which requirements an image must satisfy,
 * by transport and scope. Parsed strictly, as containers/image does: unknown or
 * duplicated members make the whole file invalid, and an invalid file rejects
 * everything. Requirement types berth does not implement (sigstoreSigned, …)
 * parse as `unsupported` and reject the images of their scope only, saying so.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { BerthError, errnoCode } from '../errors.ts';
import { transportNamed } from '../transport/index.ts';
import type { ImageReference } from '../transport/reference.ts';
import { formatIdentity, isNameOnly, parseDockerIdentity, validIdentityPrefix } from './identity.ts';
import { scopesFor } from './scopes.ts';
import { isJsonObject, parseStrictJson, unexpectedMembers, type JsonObject, type JsonValue } from '../strict-json.ts';

export const DEFAULT_POLICY_PATH = '/etc/containers/policy.json';
const MAX_POLICY_BYTES = 16 * 1024 * 1024;

export type SignedIdentity =
  | { readonly type: 'matchExact' }
  | { readonly type: 'matchRepoDigestOrExact' }
  | { readonly type: 'matchRepository' }
  | { readonly type: 'exactReference'; readonly dockerReference: string }
  | { readonly type: 'exactRepository'; readonly dockerRepository: string }
  | { readonly type: 'remapIdentity'; readonly prefix: string; readonly signedPrefix: string };

/** Where a signedBy requirement's public keys come from (keyPath is a keyPaths of one). */
export type KeySource = { readonly keyPaths: readonly string[] } | { readonly keyData: Buffer };

export interface SignedByRequirement {
  readonly type: 'signedBy';
  readonly keyType: 'GPGKeys';
  readonly keys: KeySource;
  readonly signedIdentity: SignedIdentity;
}

export type Requirement =
  | { readonly type: 'insecureAcceptAnything' }
  | { readonly type: 'reject' }
  | SignedByRequirement
  /** A requirement berth cannot evaluate; it rejects, naming `why`. */
  | { readonly type: 'unsupported'; readonly name: string; readonly why: string };

export interface Policy {
  /** The file it came from, for messages. */
  readonly path: string;
  readonly default: readonly Requirement[];
  /** transport → scope → requirements ("" is the transport's default). */
  readonly transports: ReadonlyMap<string, ReadonlyMap<string, readonly Requirement[]>>;
}

export interface ScopeMatch {
  readonly transport: string;
  /** The matching scope, "" for the transport default, undefined for the global default. */
  readonly scope: string | undefined;
  readonly requirements: readonly Requirement[];
}

class PolicyError extends Error {}

const invalid = (where: string, why: string): never => {
  throw new PolicyError(`${where}: ${why}`);
};

/** Reads and parses the policy; NO_POLICY when it is missing, POLICY_INVALID when it cannot be used. */
export async function loadPolicy(policyPath: string = DEFAULT_POLICY_PATH): Promise<Policy> {
  let bytes: Buffer;
  try {
    bytes = await readFile(policyPath);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') {
      throw new BerthError('NO_POLICY', `no trust policy: ${policyPath} does not exist, so no image is trusted`, {
        hint: 'create it: `berth trust default reject`, then `berth trust set --type signedBy --pubkeys KEY.gpg REGISTRY/NAMESPACE` per trusted scope; `berth trust default accept` would accept any image unverified',
      });
    }
    throw new BerthError('POLICY_INVALID', `trust policy ${policyPath} cannot be read (${(e as Error).message}); rejecting every image`, {
      hint: 'fix the file or its permissions',
      cause: e,
    });
  }
  return parsePolicy(bytes, policyPath);
}

/** Parses policy.json bytes; throws BerthError POLICY_INVALID naming `source` and the reason. */
export function parsePolicy(bytes: Uint8Array, source: string): Policy {
  try {
    if (bytes.length > MAX_POLICY_BYTES) invalid('file', `larger than ${MAX_POLICY_BYTES} bytes`);
    let doc: JsonValue;
    try {
      doc = parseStrictJson(bytes);
    } catch (e) {
      return invalid('JSON', (e as Error).message);
    }
    if (!isJsonObject(doc)) return invalid('top level', 'must be a JSON object');
    const extra = unexpectedMembers(doc, ['default'], ['transports']);
    if (extra !== undefined) invalid('top level', extra);
    const def = parseRequirements(doc['default'], 'default');
    const transports = new Map<string, Map<string, Requirement[]>>();
    const rawTransports = doc['transports'];
    if (rawTransports !== undefined) {
      if (!isJsonObject(rawTransports)) invalid('transports', 'must be an object');
      for (const [transport, rawScopes] of Object.entries(rawTransports as JsonObject)) {
        const where = `transports.${transport}`;
        if (!isJsonObject(rawScopes)) return invalid(where, 'must be an object of scopes');
        const scopes = new Map<string, Requirement[]>();
        for (const [scope, reqs] of Object.entries(rawScopes)) {
          const scopeWhere = `${where}[${JSON.stringify(scope)}]`;
          const bad = validateScope(transport, scope);
          if (bad !== undefined) invalid(scopeWhere, bad);
          scopes.set(scope, parseRequirements(reqs, scopeWhere));
        }
        transports.set(transport, scopes);
      }
    }
    return { path: source, default: def, transports };
  } catch (e) {
    if (!(e instanceof PolicyError)) throw e;
    throw new BerthError('POLICY_INVALID', `trust policy ${source} is invalid (${e.message}); rejecting every image`, {
      hint: 'fix the file (see containers-policy.json(5)); `berth trust show` reads it back',
    });
  }
}

/** undefined when `scope` is a valid scope of `transport`, else why not. */
export function validateScope(transport: string, scope: string): string | undefined {
  if (scope === '') return undefined;
  // Transports berth does not read (and short names) have no rules here: their scopes are kept as written.
  return transportNamed(transport)?.trust?.validateScope(scope);
}

function parseRequirements(v: JsonValue | undefined, where: string): Requirement[] {
  if (!Array.isArray(v)) return invalid(where, 'must be an array of requirements');
  if (v.length === 0) invalid(where, 'must not be empty (use [{"type":"insecureAcceptAnything"}] to require nothing)');
  return v.map((r, i) => parseRequirement(r, `${where}[${i}]`));
}

function parseRequirement(v: JsonValue, where: string): Requirement {
  if (!isJsonObject(v)) return invalid(where, 'a requirement must be an object');
  const type = v['type'];
  if (typeof type !== 'string') return invalid(where, 'missing string member "type"');
  switch (type) {
    case 'insecureAcceptAnything':
    case 'reject': {
      const extra = unexpectedMembers(v, ['type']);
      if (extra !== undefined) invalid(where, extra);
      return { type };
    }
    case 'signedBy':
      return parseSignedBy(v, where);
    default:
      return { type: 'unsupported', name: type, why: `requirement type ${JSON.stringify(type.slice(0, 100))} is not supported by berth` };
  }
}

function parseSignedBy(v: JsonObject, where: string): Requirement {
  const extra = unexpectedMembers(v, ['type', 'keyType'], ['keyPath', 'keyPaths', 'keyData', 'signedIdentity']);
  if (extra !== undefined) invalid(where, extra);
  const keyType = v['keyType'];
  if (typeof keyType !== 'string') return invalid(`${where}.keyType`, 'must be a string');
  const present = ['keyPath', 'keyPaths', 'keyData'].filter((k) => v[k] !== undefined);
  if (present.length !== 1) invalid(where, 'exactly one of keyPath, keyPaths and keyData must be present');
  let keys: KeySource;
  if (v['keyPath'] !== undefined) {
    keys = { keyPaths: [absolutePath(v['keyPath'], `${where}.keyPath`)] };
  } else if (v['keyPaths'] !== undefined) {
    const paths = v['keyPaths'];
    if (!Array.isArray(paths) || paths.length === 0) return invalid(`${where}.keyPaths`, 'must be a non-empty array of paths');
    keys = { keyPaths: paths.map((p, i) => absolutePath(p, `${where}.keyPaths[${i}]`)) };
  } else {
    const data = v['keyData'];
    if (typeof data !== 'string' || data.length === 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(data) || data.length % 4 !== 0) {
      return invalid(`${where}.keyData`, 'must be base64-encoded keyring data');
    }
    keys = { keyData: Buffer.from(data, 'base64') };
  }
  const identity = parseSignedIdentity(v['signedIdentity'], `${where}.signedIdentity`);
  if (keyType !== 'GPGKeys') {
    return { type: 'unsupported', name: 'signedBy', why: `signedBy keyType ${JSON.stringify(keyType.slice(0, 100))} is not supported by berth (only GPGKeys)` };
  }
  if (typeof identity === 'string') return { type: 'unsupported', name: 'signedBy', why: identity };
  return { type: 'signedBy', keyType, keys, signedIdentity: identity };
}

function absolutePath(v: JsonValue, where: string): string {
  if (typeof v !== 'string' || v === '') return invalid(where, 'must be a path');
  // Relative paths would depend on the working directory of whoever runs berth.
  if (!path.isAbsolute(v)) invalid(where, `${JSON.stringify(v)} must be an absolute path`);
  return v;
}

/** A SignedIdentity, or a string saying why it is unsupported (an unknown type rejects, it does not invalidate). */
function parseSignedIdentity(v: JsonValue | undefined, where: string): SignedIdentity | string {
  if (v === undefined) return { type: 'matchRepoDigestOrExact' };
  if (!isJsonObject(v)) return invalid(where, 'must be an object');
  const type = v['type'];
  if (typeof type !== 'string') return invalid(where, 'missing string member "type"');
  const exact = (...members: string[]): void => {
    const extra = unexpectedMembers(v, ['type', ...members]);
    if (extra !== undefined) invalid(where, extra);
  };
  const str = (k: string): string => {
    const s = v[k];
    if (typeof s !== 'string') return invalid(`${where}.${k}`, 'must be a string');
    return s;
  };
  switch (type) {
    case 'matchExact':
    case 'matchRepoDigestOrExact':
    case 'matchRepository':
      exact();
      return { type };
    case 'exactReference': {
      exact('dockerReference');
      const ref = str('dockerReference');
      let id;
      try {
        id = parseDockerIdentity(ref);
      } catch (e) {
        return invalid(`${where}.dockerReference`, (e as Error).message);
      }
      if (isNameOnly(id)) invalid(`${where}.dockerReference`, `${JSON.stringify(ref)} has neither a tag nor a digest`);
      return { type, dockerReference: formatIdentity(id) };
    }
    case 'exactRepository': {
      exact('dockerRepository');
      const repo = str('dockerRepository');
      try {
        return { type, dockerRepository: parseDockerIdentity(repo).name };
      } catch (e) {
        return invalid(`${where}.dockerRepository`, (e as Error).message);
      }
    }
    case 'remapIdentity': {
      exact('prefix', 'signedPrefix');
      const prefix = str('prefix');
      const signedPrefix = str('signedPrefix');
      for (const [k, p] of [['prefix', prefix], ['signedPrefix', signedPrefix]] as const) {
        if (!validIdentityPrefix(p)) invalid(`${where}.${k}`, `${JSON.stringify(p)} must be a fully expanded host[:port], namespace or repository, without tag or digest`);
      }
      return { type, prefix, signedPrefix };
    }
    default:
      return `signedIdentity type ${JSON.stringify(type.slice(0, 100))} is not supported by berth`;
  }
}

/** The requirements for `ref`: its most specific scope in its transport, else the transport default, else the global default. */
export function requirementsFor(policy: Policy, ref: ImageReference): ScopeMatch {
  const { transport, scopes: candidates } = scopesFor(ref);
  const scopes = policy.transports.get(transport);
  if (scopes !== undefined) {
    for (const scope of [...candidates, '']) {
      const requirements = scopes.get(scope);
      if (requirements !== undefined) return { transport, scope, requirements };
    }
  }
  return { transport, scope: undefined, requirements: policy.default };
}

export function describeScope(m: ScopeMatch): string {
  if (m.scope === undefined) return 'the default policy';
  if (m.scope === '') return `the ${m.transport} transport default`;
  return `${m.transport} scope ${JSON.stringify(m.scope)}`;
}

export function describeIdentity(id: SignedIdentity): string {
  switch (id.type) {
    case 'exactReference':
      return `exactReference ${id.dockerReference}`;
    case 'exactRepository':
      return `exactRepository ${id.dockerRepository}`;
    case 'remapIdentity':
      return `remapIdentity ${id.prefix} -> ${id.signedPrefix}`;
    default:
      return id.type;
  }
}

export function describeRequirement(r: Requirement): string {
  switch (r.type) {
    case 'signedBy': {
      const keys = 'keyPaths' in r.keys ? r.keys.keyPaths.join(', ') : 'keyData';
      return `signedBy (GPGKeys ${keys}; ${describeIdentity(r.signedIdentity)})`;
    }
    case 'unsupported':
      return r.name;
    default:
      return r.type;
  }
}
