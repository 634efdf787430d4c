/**
 * Trust management, like `podman image trust`: show the policy, set a scope's
 * requirement, set the default. Edits keep everything they do not understand
 * (other transports, unknown requirement types, YAML comments and keys) and
 * replace files atomically (temporary file, fsync, rename), so a crash leaves
 * either the old policy or the new one, never half of one.
 */
import { createHash, createPublicKey, randomBytes } from 'node:crypto';
import { link, mkdir, open, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { Document, isMap, parseDocument } from 'yaml';
import { BerthError, errnoCode } from '../errors.ts';
import { syncDir } from '../durable.ts';
import { statIfExists, writeFileAtomic } from '../fsutil.ts';
import { TRANSPORTS, transportNamed } from '../transport/index.ts';
import { fingerprintOf, loadKeys, readPublicKeys } from './keys.ts';
import { publicKeysFromPem } from './sigstore/keys.ts';
import { DEFAULT_POLICY_PATH, describeIdentity, loadPolicy, parsePolicy, validateScope, type PemSource, type Requirement } from './policy.ts';
import { DEFAULT_REGISTRIES_DIR, loadRegistriesConfig, type RegistriesConfig } from './registries-d.ts';
import { isJsonObject, parseStrictJson, type JsonObject, type JsonValue } from '../strict-json.ts';

export interface TrustPaths {
  policyPath?: string;
  registriesDir?: string;
}

export type TrustType = 'signedBy' | 'sigstoreSigned' | 'accept' | 'reject';

export interface TrustEntry {
  /** "default" for the global default, else the policy.json transport. */
  transport: string;
  /** The scope; "" is the transport default. */
  scope: string;
  /** accept, reject, signedBy, or the name of a requirement berth does not support. */
  type: string;
  /** For signedBy: the key files (or "keyData"). */
  keys?: string[];
  /** For signedBy: fingerprints of the keys, when they can be read. */
  fingerprints?: string[];
  identity?: string;
  /** For unsupported requirements: why berth rejects under them. */
  note?: string;
  /** The look-aside store configured for exactly this scope in registries.d. */
  lookaside?: string;
}

export interface TrustReport {
  policy: string;
  entries: TrustEntry[];
}

const BERTH_REGISTRIES_FILE = 'berth.yaml';
const MAX_FILE_BYTES = 16 * 1024 * 1024;

/** The policy as berth reads it, one entry per requirement. */
export async function showTrust(paths: TrustPaths = {}): Promise<TrustReport> {
  const policyPath = paths.policyPath ?? DEFAULT_POLICY_PATH;
  const policy = await loadPolicy(policyPath);
  const registries = await loadRegistriesConfig(paths.registriesDir ?? DEFAULT_REGISTRIES_DIR);
  const entries: TrustEntry[] = [];
  for (const r of policy.default) entries.push(await entry('default', '', r, registries.defaultDocker?.read));
  for (const [transport, scopes] of policy.transports) {
    for (const [scope, reqs] of scopes) {
      const lookaside = transport === 'docker' ? (scope === '' ? registries.defaultDocker?.read : registries.docker.get(scope)?.read) : undefined;
      for (const r of reqs) entries.push(await entry(transport, scope, r, lookaside));
    }
  }
  return { policy: policyPath, entries };
}

async function entry(transport: string, scope: string, r: Requirement, lookaside: string | undefined): Promise<TrustEntry> {
  const e: TrustEntry = { transport, scope, type: r.type === 'insecureAcceptAnything' ? 'accept' : r.type === 'unsupported' ? r.name : r.type };
  if (r.type === 'unsupported') e.note = r.why;
  if (r.type === 'signedBy') {
    e.keys = 'keyPaths' in r.keys ? [...r.keys.keyPaths] : ['keyData'];
    e.identity = describeIdentity(r.signedIdentity);
    try {
      e.fingerprints = (await loadKeys(r.keys)).map(fingerprintOf);
    } catch (err) {
      e.note = (err as Error).message;
    }
  }
  if (r.type === 'sigstoreSigned') {
    e.identity = describeIdentity(r.signedIdentity);
    const pem = (src: PemSource): string[] => ('paths' in src ? [...src.paths] : src.datas.map(() => 'keyData'));
    if (r.keys !== undefined) {
      e.keys = pem(r.keys);
      if ('paths' in r.keys) {
        try {
          e.fingerprints = (await Promise.all(r.keys.paths.map(async (p) => publicKeysFromPem(await readFile(p), p)))).flat().map((k) => `SHA256:${createHash('sha256').update(k.spki).digest('base64').replace(/=+$/, '')}`);
        } catch (err) {
          e.note = (err as Error).message;
        }
      }
    } else if (r.fulcio !== undefined) e.keys = [`fulcio ${r.fulcio.subjectEmail} (${r.fulcio.oidcIssuer})`];
    else if (r.pki !== undefined) e.keys = [`pki ${[r.pki.subjectEmail, r.pki.subjectHostname].filter((x) => x !== undefined).join(' ')}`];
  }
  if (lookaside !== undefined) e.lookaside = lookaside;
  return e;
}

export interface SetTrustOptions extends TrustPaths {
  /** "default", a docker scope (HOST[:PORT][/NAMESPACE…], optionally docker://…), or oci:PATH / oci-archive:PATH. */
  scope: string;
  type: TrustType;
  /** Public key files for signedBy. */
  pubkeys?: string[];
  /** A look-aside store URL to record for the scope in registries.d. */
  lookaside?: string;
  /** sigstoreSigned without keys: certificates from this Fulcio CA for this OIDC identity (Rekor keys required). */
  fulcio?: { caPath: string; oidcIssuer: string; subjectEmail: string };
  /** sigstoreSigned: Rekor public key files (with keys: a Rekor SET becomes required). */
  rekorKeys?: string[];
}

export interface SetTrustResult {
  policy: string;
  transport: string;
  scope: string;
  requirement: JsonObject;
  /** The registries.d file written, with --lookaside or for sigstoreSigned (use-sigstore-attachments). */
  registriesFile?: string;
  /** What was set in it. */
  registries?: Record<string, string | boolean>;
}

/** Splits a user's scope into policy transport and scope; "default" is the global default. */
export function parseScopeArgument(input: string): { transport: string; scope: string } {
  if (input === 'default') return { transport: 'default', scope: '' };
  // TRANSPORT:SCOPE for a transport with policy scopes; anything else is a registry (docker) scope.
  const m = /^([a-z][a-z-]*):(.*)$/.exec(input);
  const named = m === null ? undefined : transportNamed(m[1]!);
  const [transport, rules, written] = named?.trust !== undefined ? [named.name, named.trust, m![2]!] : ['docker', TRANSPORTS.docker.trust!, input];
  const scope = rules.normalizeScope(written);
  const bad = scope === '' ? undefined : validateScope(transport, scope);
  if (bad !== undefined) throw new BerthError('USAGE', `scope ${JSON.stringify(input)}: ${bad}`, { hint: 'write default, HOST[:PORT][/NAMESPACE…], or oci:/PATH' });
  return { transport, scope };
}

/** Absolute paths of PEM files holding one PUBLIC KEY each (cosign.pub, a Rekor key); throws KEY_INVALID / USAGE. */
async function pemPublicKeyFiles(files: readonly string[], what: string): Promise<string[]> {
  const out: string[] = [];
  for (const p of files) {
    const f = path.resolve(p);
    let bytes: Buffer;
    try {
      bytes = await readFile(f);
    } catch (e) {
      throw new BerthError('USAGE', `cannot read the ${what} file ${f}: ${(e as Error).message}`);
    }
    let ok = bytes.length <= 64 * 1024;
    try {
      ok &&= publicKeysFromPem(bytes, f).length === 1;
    } catch {
      ok = false;
    }
    if (!ok) {
      throw new BerthError('KEY_INVALID', `${f} is not one PEM PUBLIC KEY (ECDSA P-256/P-384/P-521, RSA of 2048 bits or more, or Ed25519)`, {
        hint: 'use the .pub file of berth trust keygen or cosign generate-key-pair',
      });
    }
    out.push(f);
  }
  return out;
}

/** keyPath or keyPaths (and the like) for one file or several. */
const onePathOrMany = (stem: string, files: string[]): JsonObject => (files.length === 1 ? { [`${stem}Path`]: files[0]! } : { [`${stem}Paths`]: files });

async function sigstoreRequirement(pubkeys: readonly string[], options: SetTrustOptions): Promise<JsonObject> {
  const rekor = options.rekorKeys ?? [];
  const rekorPart = rekor.length === 0 ? {} : onePathOrMany('rekorPublicKey', await pemPublicKeyFiles(rekor, 'Rekor public key'));
  if (options.fulcio !== undefined) {
    if (pubkeys.length > 0) throw new BerthError('USAGE', 'sigstoreSigned takes either --pubkeys or --fulcio-ca, not both');
    if (rekor.length === 0) throw new BerthError('USAGE', 'keyless sigstoreSigned (--fulcio-ca) needs --rekor-key FILE', { hint: "the Rekor log's public key proves when the short-lived certificate was used" });
    const f = options.fulcio;
    if (f.oidcIssuer === '' || f.subjectEmail === '') throw new BerthError('USAGE', '--fulcio-ca needs --oidc-issuer URL and --subject-email EMAIL');
    const caPath = path.resolve(f.caPath);
    try {
      await readFile(caPath);
    } catch (e) {
      throw new BerthError('USAGE', `cannot read the Fulcio CA file ${caPath}: ${(e as Error).message}`);
    }
    return { type: 'sigstoreSigned', fulcio: { caPath, oidcIssuer: f.oidcIssuer, subjectEmail: f.subjectEmail }, ...rekorPart };
  }
  if (pubkeys.length === 0) throw new BerthError('USAGE', '--type sigstoreSigned needs --pubkeys FILE (a cosign public key) or --fulcio-ca', { hint: 'make a key pair with berth trust keygen' });
  return { type: 'sigstoreSigned', ...onePathOrMany('key', await pemPublicKeyFiles(pubkeys, 'public key')), ...rekorPart };
}

async function requirementFor(type: TrustType, pubkeys: readonly string[], options: SetTrustOptions): Promise<JsonObject> {
  if (type !== 'sigstoreSigned' && (options.fulcio !== undefined || (options.rekorKeys ?? []).length > 0)) {
    throw new BerthError('USAGE', '--fulcio-ca, --oidc-issuer, --subject-email and --rekor-key only go with --type sigstoreSigned');
  }
  if (type === 'sigstoreSigned') return sigstoreRequirement(pubkeys, options);
  if (type === 'accept') {
    if (pubkeys.length > 0) throw new BerthError('USAGE', '--pubkeys only goes with --type signedBy');
    return { type: 'insecureAcceptAnything' };
  }
  if (type === 'reject') {
    if (pubkeys.length > 0) throw new BerthError('USAGE', '--pubkeys only goes with --type signedBy');
    return { type: 'reject' };
  }
  if (pubkeys.length === 0) throw new BerthError('USAGE', '--type signedBy needs at least one --pubkeys FILE', { hint: 'export the key with gpg --export FINGERPRINT > KEY.gpg' });
  const files = pubkeys.map((p) => path.resolve(p));
  for (const f of files) {
    let bytes: Buffer;
    try {
      bytes = await readFile(f);
    } catch (e) {
      throw new BerthError('USAGE', `cannot read the public key file ${f}: ${(e as Error).message}`);
    }
    try {
      await readPublicKeys(bytes, f);
    } catch (e) {
      throw new BerthError('KEY_INVALID', (e as Error).message, { hint: 'export public keys with gpg --export [--armor] FINGERPRINT > KEY.gpg' });
    }
  }
  return files.length === 1 ? { type: 'signedBy', keyType: 'GPGKeys', keyPath: files[0]! } : { type: 'signedBy', keyType: 'GPGKeys', keyPaths: files };
}

/** Sets the requirement of one scope (replacing what it had); with `lookaside`, records the store for it too. */
export async function setTrust(options: SetTrustOptions): Promise<SetTrustResult> {
  const policyPath = options.policyPath ?? DEFAULT_POLICY_PATH;
  const { transport, scope } = parseScopeArgument(options.scope);
  const requirement = await requirementFor(options.type, options.pubkeys ?? [], options);
  if (options.lookaside !== undefined) {
    if (transport !== 'docker' && transport !== 'default') throw new BerthError('USAGE', '--lookaside applies to registry (docker) scopes only');
    checkLookasideUrl(options.lookaside);
  }
  await editPolicy(policyPath, (doc) => {
    if (transport === 'default') {
      doc['default'] = [requirement];
      return;
    }
    let transports = doc['transports'];
    if (transports === undefined) transports = doc['transports'] = {};
    if (!isJsonObject(transports)) throw policyShape(policyPath, 'transports is not an object');
    let scopes = transports[transport];
    if (scopes === undefined) scopes = transports[transport] = {};
    if (!isJsonObject(scopes)) throw policyShape(policyPath, `transports.${transport} is not an object`);
    scopes[scope] = [requirement];
  });
  const result: SetTrustResult = { policy: policyPath, transport, scope, requirement };
  // containers/image reads a registry's sigstore attachments only where registries.d says so.
  const registries: Record<string, string | boolean> = {
    ...(options.lookaside === undefined ? {} : { lookaside: options.lookaside }),
    ...(options.type === 'sigstoreSigned' && (transport === 'docker' || transport === 'default') ? { 'use-sigstore-attachments': true } : {}),
  };
  if (Object.keys(registries).length > 0) {
    result.registriesFile = await setRegistriesD(options.registriesDir ?? DEFAULT_REGISTRIES_DIR, transport === 'default' ? undefined : scope, registries);
    result.registries = registries;
  }
  return result;
}

/** Sets the global default to accept (insecureAcceptAnything) or reject. */
export async function setDefaultTrust(type: 'accept' | 'reject', paths: TrustPaths = {}): Promise<SetTrustResult> {
  return setTrust({ ...paths, scope: 'default', type });
}

function checkLookasideUrl(url: string): void {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new BerthError('USAGE', `--lookaside ${JSON.stringify(url)} is not a URL`, { hint: 'use file:///DIR or https://HOST/PATH' });
  }
  if (!['file:', 'http:', 'https:'].includes(u.protocol)) throw new BerthError('USAGE', `--lookaside ${url}: only file:, http: and https: stores are supported`);
}

const policyShape = (file: string, why: string): BerthError =>
  new BerthError('POLICY_INVALID', `cannot edit ${file}: ${why}`, { hint: 'fix the file by hand (see containers-policy.json(5))' });

/**
 * Reads policy.json (a new one rejects by default, as no policy does now),
 * applies `edit` to its JSON, checks the result is a policy berth accepts, and
 * replaces the file atomically.
 */
async function editPolicy(file: string, edit: (doc: JsonObject) => void): Promise<void> {
  const before = await readOptional(file);
  let doc: JsonValue;
  if (before === undefined) {
    doc = { default: [{ type: 'reject' }] };
  } else {
    try {
      doc = parseStrictJson(before);
    } catch (e) {
      throw policyShape(file, (e as Error).message);
    }
  }
  if (!isJsonObject(doc)) throw policyShape(file, 'the top level is not an object');
  edit(doc);
  const text = `${JSON.stringify(doc, null, 4)}\n`;
  try {
    parsePolicy(Buffer.from(text), file);
  } catch (e) {
    throw new BerthError('POLICY_INVALID', `not changing ${file}: the result would not be a valid policy (${(e as BerthError).message})`, {
      hint: 'fix the file by hand first (see containers-policy.json(5))',
    });
  }
  await writeAtomic(file, text);
}

/** Sets `values` (lookaside, use-sigstore-attachments) for docker `scope` (undefined: default-docker) in the file that defines it, else berth.yaml. */
async function setRegistriesD(dir: string, scope: string | undefined, values: Record<string, string | boolean>): Promise<string> {
  let config: RegistriesConfig;
  try {
    config = await loadRegistriesConfig(dir);
  } catch (e) {
    throw new BerthError('CONFIG_INVALID', `not changing ${dir}: ${(e as Error).message}`, { hint: 'fix the file by hand first' });
  }
  const existing = scope === undefined ? config.defaultDocker : config.docker.get(scope);
  const file = existing?.file ?? path.join(dir, BERTH_REGISTRIES_FILE);
  const text = (await readOptional(file))?.toString('utf8') ?? '';
  const doc: Document = text.trim() === '' ? new Document({}) : parseDocument(text, { uniqueKeys: true });
  if (doc.errors.length > 0) throw new BerthError('CONFIG_INVALID', `not changing ${file}: ${doc.errors[0]!.message.split('\n')[0]}`);
  if (doc.contents === null) doc.contents = doc.createNode({}); // only comments so far
  if (!isMap(doc.contents)) throw new BerthError('CONFIG_INVALID', `not changing ${file}: the top level is not a mapping`);
  const keyPath = scope === undefined ? ['default-docker'] : ['docker', scope];
  // A key written as "docker:" with no value is null; it must become a mapping before setIn can go into it.
  for (let i = 1; i <= keyPath.length; i++) {
    const node = doc.getIn(keyPath.slice(0, i), true);
    if (node === undefined || node === null || (typeof node === 'object' && 'value' in node && (node as { value: unknown }).value === null)) {
      doc.setIn(keyPath.slice(0, i), doc.createNode({}));
    } else if (!isMap(node)) {
      throw new BerthError('CONFIG_INVALID', `not changing ${file}: ${keyPath.slice(0, i).join('.')} is not a mapping`);
    }
  }
  for (const [k, v] of Object.entries(values)) doc.setIn([...keyPath, k], v);
  const after = doc.toString();
  if (after === text) return file; // already so: leave the file alone
  await mkdir(dir, { recursive: true, mode: 0o755 });
  await writeAtomic(file, after);
  return file;
}

async function readOptional(file: string): Promise<Buffer | undefined> {
  try {
    const bytes = await readFile(file);
    if (bytes.length > MAX_FILE_BYTES) throw new BerthError('CONFIG_INVALID', `${file} is larger than ${MAX_FILE_BYTES} bytes`);
    return bytes;
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return undefined;
    if (e instanceof BerthError) throw e;
    throw new BerthError('IO_ERROR', `cannot read ${file}: ${(e as Error).message}`, { cause: e });
  }
}

/** Replaces `file` with `text` atomically and durably (src/fsutil.ts), keeping the old file's mode. */
async function writeAtomic(file: string, text: string): Promise<void> {
  try {
    const mode = ((await statIfExists(file))?.mode ?? 0o644) & 0o7777;
    await mkdir(path.dirname(file), { recursive: true, mode: 0o755 });
    await writeFileAtomic(file, text, { mode, exactMode: true }); // the umask must not narrow it
  } catch (e) {
    throw new BerthError('IO_ERROR', `cannot write ${file}: ${(e as Error).message}`, { cause: e });
  }
}

export interface KeygenResult {
  privateKey: string;
  publicKey: string;
  /** SHA256:BASE64 of the public key */
  fingerprint: string;
}

/**
 * `cosign generate-key-pair`: PREFIX.key (ECDSA P-256, encrypted with the
 * password, mode 0600) and PREFIX.pub. Never overwrites: each file appears
 * whole or not at all (written aside, then linked into place), and a key
 * without its .pub is removed again.
 */
export async function keygen(prefix: string, password: () => Promise<string>): Promise<KeygenResult> {
  const privateKey = path.resolve(`${prefix}.key`);
  const publicKey = path.resolve(`${prefix}.pub`);
  for (const f of [privateKey, publicKey]) {
    if ((await statIfExists(f)) !== undefined) throw new BerthError('USAGE', `${f} already exists`, { hint: 'remove it, or choose another prefix' });
  }
  const { generateCosignKeyPair, publicKeyFingerprint } = await import('./sigstore/private-key.ts');
  const pair = await generateCosignKeyPair(await password());
  await writeExclusive(privateKey, pair.privatePem, 0o600);
  try {
    await writeExclusive(publicKey, pair.publicPem, 0o644);
  } catch (e) {
    await rm(privateKey, { force: true });
    throw e;
  }
  return { privateKey, publicKey, fingerprint: publicKeyFingerprint(createPublicKey(pair.publicPem)) };
}

async function writeExclusive(file: string, text: string, mode: number): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
  try {
    const fh = await open(tmp, 'wx', mode);
    try {
      await fh.writeFile(text);
      await fh.chmod(mode); // the umask must not widen nor narrow it
      await fh.sync();
    } finally {
      await fh.close();
    }
    await link(tmp, file);
  } catch (e) {
    if (errnoCode(e) === 'EEXIST') throw new BerthError('USAGE', `${file} already exists`, { hint: 'remove it, or choose another prefix' });
    throw new BerthError('IO_ERROR', `cannot write ${file}: ${(e as Error).message}`, { cause: e });
  } finally {
    await rm(tmp, { force: true });
  }
  await syncDir(path.dirname(file));
}
