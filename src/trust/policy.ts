/**
 * containers-policy.json(5): which requirements an image must satisfy,
 * by transport and scope. Parsed strictly, as containers/image does: unknown or
 * duplicated members make the whole file invalid, and an invalid file rejects
 * everything. Requirement types berth does not implement (signedBaseLayer, …)
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

/**
 * Where PEM material of a sigstoreSigned requirement comes from: files
 * (…Path/…Paths) or base64 in the policy (…Data/…Datas). Each item is one
 * blob (one file or one base64 string).
 */
export type PemSource = { readonly paths: readonly string[] } | { readonly datas: readonly Buffer[] };

/** sigstoreSigned's `fulcio`: certificates issued by a Fulcio CA to one OIDC identity. */
export interface FulcioTrust {
  readonly ca: PemSource;
  readonly oidcIssuer: string;
  readonly subjectEmail: string;
}

/** sigstoreSigned's `pki`: certificates of the operator's own CA, for an email and/or host name. */
export interface PkiTrust {
  readonly caRoots: PemSource;
  readonly caIntermediates: PemSource | undefined;
  readonly subjectEmail: string | undefined;
  readonly subjectHostname: string | undefined;
}

/**
 * containers-policy.json(5) sigstoreSigned: exactly one of public keys,
 * `fulcio` and `pki`; Rekor keys are required with fulcio, optional with
 * keys (then a Rekor SET is required), refused with pki (as containers/image).
 */
export interface SigstoreSignedRequirement {
  readonly type: 'sigstoreSigned';
  readonly keys: PemSource | undefined;
  readonly fulcio: FulcioTrust | undefined;
  readonly pki: PkiTrust | undefined;
  readonly rekorKeys: PemSource | undefined;
  readonly signedIdentity: SignedIdentity;
}

export type Requirement =
  | { readonly type: 'insecureAcceptAnything' }
  | { readonly type: 'reject' }
  | SignedByRequirement
  | SigstoreSignedRequirement
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
    case 'sigstoreSigned':
      return parseSigstoreSigned(v, where);
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

const base64Re = /^[A-Za-z0-9+/]*={0,2}$/;

/** Standard base64 as Go's encoding/json writes []byte: canonical (no stray bits, padded). */
function base64Member(v: JsonValue | undefined, where: string): Buffer {
  if (typeof v !== 'string' || v.length === 0 || v.length % 4 !== 0 || !base64Re.test(v)) return invalid(where, 'must be base64-encoded data');
  const b = Buffer.from(v, 'base64');
  if (b.toString('base64') !== v) invalid(where, 'is not canonical base64');
  return b;
}

/**
 * One PEM source from the members `${stem}Path`, `${stem}Paths`, `${stem}Data`,
 * `${stem}Datas` (`plural`: whether the …s forms exist); undefined when none is present.
 */
function pemSource(v: JsonObject, where: string, stem: string, plural: boolean): PemSource | undefined {
  const names = plural ? [`${stem}Path`, `${stem}Paths`, `${stem}Data`, `${stem}Datas`] : [`${stem}Path`, `${stem}Data`];
  const present = names.filter((k) => v[k] !== undefined);
  if (present.length === 0) return undefined;
  if (present.length > 1) return invalid(where, `only one of ${names.join(', ')} may be present (found ${present.join(' and ')})`);
  const k = present[0] as string;
  const val = v[k] as JsonValue;
  const list = (what: string): JsonValue[] => {
    if (!Array.isArray(val) || val.length === 0) return invalid(`${where}.${k}`, `must be a non-empty array of ${what}`);
    return val;
  };
  if (k.endsWith('Paths')) return { paths: list('paths').map((p, i) => absolutePath(p, `${where}.${k}[${i}]`)) };
  if (k.endsWith('Path')) return { paths: [absolutePath(val, `${where}.${k}`)] };
  if (k.endsWith('Datas')) return { datas: list('base64 strings').map((d, i) => base64Member(d, `${where}.${k}[${i}]`)) };
  return { datas: [base64Member(val, `${where}.${k}`)] };
}

function nonEmptyString(v: JsonValue | undefined, where: string): string {
  if (typeof v !== 'string' || v === '') return invalid(where, 'must be a non-empty string');
  return v;
}

function parseSigstoreSigned(v: JsonObject, where: string): Requirement {
  const keyMembers = ['keyPath', 'keyPaths', 'keyData', 'keyDatas'];
  const rekorMembers = ['rekorPublicKeyPath', 'rekorPublicKeyPaths', 'rekorPublicKeyData', 'rekorPublicKeyDatas'];
  const extra = unexpectedMembers(v, ['type'], [...keyMembers, 'fulcio', 'pki', ...rekorMembers, 'signedIdentity']);
  if (extra !== undefined) invalid(where, extra);
  const sources = [...keyMembers, 'fulcio', 'pki'].filter((k) => v[k] !== undefined);
  if (sources.length !== 1) invalid(where, `exactly one of keyPath, keyPaths, keyData, keyDatas, fulcio and pki must be present${sources.length > 1 ? ` (found ${sources.join(' and ')})` : ''}`);
  const keys = pemSource(v, where, 'key', true);
  const rekorKeys = pemSource(v, where, 'rekorPublicKey', true);
  let fulcio: FulcioTrust | undefined;
  let pki: PkiTrust | undefined;
  if (v['fulcio'] !== undefined) {
    const f = v['fulcio'];
    const fw = `${where}.fulcio`;
    if (!isJsonObject(f)) return invalid(fw, 'must be an object');
    const fx = unexpectedMembers(f, [], ['caPath', 'caData', 'oidcIssuer', 'subjectEmail']);
    if (fx !== undefined) invalid(fw, fx);
    const ca = pemSource(f, fw, 'ca', false);
    if (ca === undefined) return invalid(fw, 'exactly one of caPath and caData must be present');
    fulcio = { ca, oidcIssuer: nonEmptyString(f['oidcIssuer'], `${fw}.oidcIssuer`), subjectEmail: nonEmptyString(f['subjectEmail'], `${fw}.subjectEmail`) };
    if (rekorKeys === undefined) invalid(where, 'fulcio needs one of rekorPublicKeyPath, rekorPublicKeyPaths, rekorPublicKeyData and rekorPublicKeyDatas');
  }
  if (v['pki'] !== undefined) {
    const p = v['pki'];
    const pw = `${where}.pki`;
    if (!isJsonObject(p)) return invalid(pw, 'must be an object');
    const px = unexpectedMembers(p, [], ['caRootsPath', 'caRootsData', 'caIntermediatesPath', 'caIntermediatesData', 'subjectEmail', 'subjectHostname']);
    if (px !== undefined) invalid(pw, px);
    const caRoots = pemSource(p, pw, 'caRoots', false);
    if (caRoots === undefined) return invalid(pw, 'exactly one of caRootsPath and caRootsData must be present');
    const email = p['subjectEmail'] === undefined ? undefined : nonEmptyString(p['subjectEmail'], `${pw}.subjectEmail`);
    const host = p['subjectHostname'] === undefined ? undefined : nonEmptyString(p['subjectHostname'], `${pw}.subjectHostname`);
    if (email === undefined && host === undefined) invalid(pw, 'at least one of subjectEmail and subjectHostname must be present');
    pki = { caRoots, caIntermediates: pemSource(p, pw, 'caIntermediates', false), subjectEmail: email, subjectHostname: host };
    if (rekorKeys !== undefined) invalid(where, 'pki cannot be combined with Rekor public keys');
  }
  const identity = parseSignedIdentity(v['signedIdentity'], `${where}.signedIdentity`);
  if (typeof identity === 'string') return { type: 'unsupported', name: 'sigstoreSigned', why: identity };
  return { type: 'sigstoreSigned', keys, fulcio, pki, rekorKeys, signedIdentity: identity };
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
    case 'sigstoreSigned':
      return `sigstoreSigned (${describeSigstoreTrust(r)}; ${describeIdentity(r.signedIdentity)})`;
    case 'unsupported':
      return r.name;
    default:
      return r.type;
  }
}

const describePem = (s: PemSource, data: string): string => ('paths' in s ? s.paths.join(', ') : data);

function describeSigstoreTrust(r: SigstoreSignedRequirement): string {
  const rekor = r.rekorKeys === undefined ? '' : `, Rekor ${describePem(r.rekorKeys, 'rekorPublicKeyData')}`;
  if (r.fulcio !== undefined) return `fulcio ${describePem(r.fulcio.ca, 'caData')} ${r.fulcio.oidcIssuer} ${r.fulcio.subjectEmail}${rekor}`;
  if (r.pki !== undefined) return `pki ${describePem(r.pki.caRoots, 'caRootsData')} ${[r.pki.subjectEmail, r.pki.subjectHostname].filter((x) => x !== undefined).join(' ')}`;
  return `keys ${r.keys === undefined ? '?' : describePem(r.keys, 'keyData')}${rekor}`;
}
