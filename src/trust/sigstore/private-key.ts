/**
 * cosign's encrypted private key (`cosign generate-key-pair`, `skopeo
 * generate-sigstore-key`): a PEM block `ENCRYPTED SIGSTORE PRIVATE KEY`
 * (cosign before 2.0: `ENCRYPTED COSIGN PRIVATE KEY`) whose body is the JSON
 * envelope of go-securesystemslib's `encrypted` package:
 *
 *   {"kdf":{"name":"scrypt","params":{"N":32768,"r":8,"p":1},"salt":B64},
 *    "cipher":{"name":"nacl/secretbox","nonce":B64},"ciphertext":B64}
 *
 * The secretbox key is scrypt(password, salt, 32 bytes); the plaintext is the
 * PKCS #8 DER of the private key. The file is untrusted input: parsed
 * strictly, and its scrypt parameters are bounded so that a hostile key file
 * cannot make berth allocate gigabytes or spin for minutes.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, scrypt, type KeyObject } from 'node:crypto';
import { createRequire } from 'node:module';
import { BerthError } from '../../errors.ts';
import { decodeBase64, parsePem, type PemBlock } from './encoding.ts';
import { isJsonObject, parseStrictJson, unexpectedMembers, type JsonObject, type JsonValue } from '../../strict-json.ts';

/** tweetnacl is CommonJS; only secretbox is used (XSalsa20-Poly1305, which node:crypto lacks). */
type SecretBox = ((msg: Uint8Array, nonce: Uint8Array, key: Uint8Array) => Uint8Array) & {
  open(box: Uint8Array, nonce: Uint8Array, key: Uint8Array): Uint8Array | null;
};
const secretbox = (): SecretBox => (createRequire(import.meta.url)('tweetnacl') as { secretbox: SecretBox }).secretbox;

export const SIGSTORE_PRIVATE_KEY_PEM = 'ENCRYPTED SIGSTORE PRIVATE KEY';
export const COSIGN_PRIVATE_KEY_PEM = 'ENCRYPTED COSIGN PRIVATE KEY';

/** What go-securesystemslib's Encrypt (used by cosign) writes. */
export const DEFAULT_SCRYPT = { N: 32768, r: 8, p: 1 } as const;
/** Far beyond any key file cosign writes (a few hundred bytes). */
export const MAX_PRIVATE_KEY_FILE_BYTES = 64 * 1024;
/** scrypt memory is 128·N·r bytes: at most 256 MiB (cosign's default needs 32 MiB). */
const MAX_SCRYPT_MEMORY = 256 * 1024 * 1024;
/** scrypt work is proportional to N·r·p: at most 64 times cosign's default. */
const MAX_SCRYPT_WORK = 64 * DEFAULT_SCRYPT.N * DEFAULT_SCRYPT.r * DEFAULT_SCRYPT.p;
const SALT_BYTES = 32;
const NONCE_BYTES = 24;
const KEY_BYTES = 32;
const BOX_OVERHEAD = 16;

export interface ScryptParams {
  readonly N: number;
  readonly r: number;
  readonly p: number;
}

/** The envelope of an encrypted key, checked for shape and bounds, not yet decrypted. */
export interface EncryptedKeyEnvelope {
  readonly label: string;
  readonly scrypt: ScryptParams;
  readonly salt: Buffer;
  readonly nonce: Buffer;
  readonly ciphertext: Buffer;
}

const invalid = (what: string, why: string): never => {
  throw new BerthError('KEY_INVALID', `${what} is not a cosign private key: ${why}`, {
    hint: 'use a key from berth trust keygen or cosign generate-key-pair (-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----)',
  });
};

/** Canonical standard base64, as Go's encoding/json writes []byte (encoding.ts's decoder). */
function base64Field(v: JsonValue | undefined, what: string, field: string): Buffer {
  if (typeof v !== 'string') return invalid(what, `${field} is not a string`);
  try {
    return decodeBase64(v, field);
  } catch (e) {
    return invalid(what, (e as Error).message);
  }
}

function object(v: JsonValue | undefined, what: string, field: string, members: readonly string[]): JsonObject {
  if (!isJsonObject(v)) return invalid(what, `${field} is not an object`);
  const extra = unexpectedMembers(v, members);
  if (extra !== undefined) invalid(what, `${field}: ${extra}`);
  return v;
}

function boundedInt(v: JsonValue | undefined, what: string, field: string, max: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1 || v > max) return invalid(what, `${field} must be an integer from 1 to ${max}`);
  return v;
}

/** Checks scrypt parameters against berth's bounds; returns why not, or undefined. */
export function scryptParamsProblem(s: ScryptParams): string | undefined {
  if (s.N < 2 || (s.N & (s.N - 1)) !== 0) return `scrypt N=${s.N} is not a power of two`;
  if (128 * s.N * s.r > MAX_SCRYPT_MEMORY) return `scrypt N=${s.N}, r=${s.r} would need ${Math.round((128 * s.N * s.r) / 2 ** 20)} MiB (berth allows ${MAX_SCRYPT_MEMORY / 2 ** 20})`;
  if (s.N * s.r * s.p > MAX_SCRYPT_WORK) return `scrypt N=${s.N}, r=${s.r}, p=${s.p} is more work than berth allows (N·r·p at most ${MAX_SCRYPT_WORK})`;
  return undefined;
}

/** Parses an encrypted key file without decrypting it. Throws KEY_INVALID. */
export function parseEncryptedPrivateKey(untrustedBytes: Uint8Array, what: string): EncryptedKeyEnvelope {
  if (untrustedBytes.length > MAX_PRIVATE_KEY_FILE_BYTES) invalid(what, `larger than ${MAX_PRIVATE_KEY_FILE_BYTES} bytes`);
  const text = Buffer.from(untrustedBytes.buffer, untrustedBytes.byteOffset, untrustedBytes.byteLength).toString('latin1');
  let blocks: PemBlock[];
  try {
    blocks = parsePem(text, 'the file');
  } catch (e) {
    return invalid(what, (e as Error).message);
  }
  if (blocks.length !== 1) invalid(what, `${blocks.length} PEM blocks, not one`);
  const { label, der: body } = blocks[0]!;
  if (label !== SIGSTORE_PRIVATE_KEY_PEM && label !== COSIGN_PRIVATE_KEY_PEM) invalid(what, `a PEM ${label.slice(0, 60)}, not ${SIGSTORE_PRIVATE_KEY_PEM}`);
  let doc: JsonValue;
  try {
    doc = parseStrictJson(body);
  } catch (e) {
    return invalid(what, `the PEM body is not JSON (${(e as Error).message})`);
  }
  const top = object(doc, what, 'the envelope', ['kdf', 'cipher', 'ciphertext']);
  const kdf = object(top['kdf'], what, 'kdf', ['name', 'params', 'salt']);
  if (kdf['name'] !== 'scrypt') invalid(what, `kdf.name is ${JSON.stringify(kdf['name'])?.slice(0, 60)}, not "scrypt"`);
  const params = object(kdf['params'], what, 'kdf.params', ['N', 'r', 'p']);
  const scryptParams = { N: boundedInt(params['N'], what, 'kdf.params.N', 2 ** 30), r: boundedInt(params['r'], what, 'kdf.params.r', 1024), p: boundedInt(params['p'], what, 'kdf.params.p', 1024) };
  const problem = scryptParamsProblem(scryptParams);
  if (problem !== undefined) invalid(what, problem);
  const salt = base64Field(kdf['salt'], what, 'kdf.salt');
  if (salt.length < 16 || salt.length > 1024) invalid(what, `kdf.salt is ${salt.length} bytes`);
  const cipher = object(top['cipher'], what, 'cipher', ['name', 'nonce']);
  if (cipher['name'] !== 'nacl/secretbox') invalid(what, `cipher.name is ${JSON.stringify(cipher['name'])?.slice(0, 60)}, not "nacl/secretbox"`);
  const nonce = base64Field(cipher['nonce'], what, 'cipher.nonce');
  if (nonce.length !== NONCE_BYTES) invalid(what, `cipher.nonce is ${nonce.length} bytes, not ${NONCE_BYTES}`);
  const ciphertext = base64Field(top['ciphertext'], what, 'ciphertext');
  if (ciphertext.length <= BOX_OVERHEAD) invalid(what, 'ciphertext is too short');
  return { label, scrypt: scryptParams, salt, nonce, ciphertext };
}

function deriveKey(password: string, salt: Buffer, s: ScryptParams): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(Buffer.from(password, 'utf8'), salt, KEY_BYTES, { N: s.N, r: s.r, p: s.p, maxmem: MAX_SCRYPT_MEMORY + 1024 * 1024 }, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

/**
 * Decrypts a cosign key file with `password`; returns the private key.
 * Throws KEY_INVALID for a malformed file, KEY_PASSWORD when the password is wrong.
 */
export async function decryptPrivateKey(untrustedBytes: Uint8Array, password: string, what: string): Promise<KeyObject> {
  const env = parseEncryptedPrivateKey(untrustedBytes, what);
  const key = await deriveKey(password, env.salt, env.scrypt);
  const plain = secretbox().open(env.ciphertext, env.nonce, key);
  if (plain === null) {
    throw new BerthError('KEY_PASSWORD', `wrong password for ${what}`, { hint: 'check the password given by --passphrase-file, $COSIGN_PASSWORD or the prompt' });
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({ key: Buffer.from(plain), format: 'der', type: 'pkcs8' });
  } catch {
    return invalid(what, 'the decrypted key is not PKCS #8');
  }
  signingAlgorithm(privateKey, what);
  return privateKey;
}

/** Encrypts a private key as cosign does; returns the PEM text. */
export async function encryptPrivateKey(privateKey: KeyObject, password: string, params: ScryptParams = DEFAULT_SCRYPT): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const nonce = randomBytes(NONCE_BYTES);
  const key = await deriveKey(password, salt, params);
  const der = privateKey.export({ type: 'pkcs8', format: 'der' });
  const ciphertext = Buffer.from(secretbox()(der, nonce, key));
  // Member order as Go marshals the envelope struct.
  const json = JSON.stringify({
    kdf: { name: 'scrypt', params: { N: params.N, r: params.r, p: params.p }, salt: salt.toString('base64') },
    cipher: { name: 'nacl/secretbox', nonce: nonce.toString('base64') },
    ciphertext: ciphertext.toString('base64'),
  });
  return pem(SIGSTORE_PRIVATE_KEY_PEM, Buffer.from(json));
}

export function pem(label: string, der: Buffer): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/** The PEM `PUBLIC KEY` (PKIX) of a private key, as cosign.pub holds it. */
export function publicKeyPem(privateKey: KeyObject): string {
  return pem('PUBLIC KEY', createPublicKey(privateKey).export({ type: 'spki', format: 'der' }));
}

/** SHA256:BASE64 of the public key's SPKI DER, the name berth shows for a cosign key. */
export function publicKeyFingerprint(key: KeyObject): string {
  const spki = (key.type === 'public' ? key : createPublicKey(key)).export({ type: 'spki', format: 'der' });
  return `SHA256:${createHash('sha256').update(spki).digest('base64').replace(/=+$/, '')}`;
}

/** A new ECDSA P-256 key pair, cosign's default: the encrypted private key and the public key, as PEM. */
export async function generateCosignKeyPair(password: string): Promise<{ privatePem: string; publicPem: string }> {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return { privatePem: await encryptPrivateKey(privateKey, password), publicPem: publicKeyPem(privateKey) };
}

/**
 * How cosign signs with this key: ECDSA (ASN.1 DER) and RSA PKCS #1 v1.5 over
 * SHA-256, Ed25519 pure. Throws KEY_INVALID for other keys.
 */
export function signingAlgorithm(privateKey: KeyObject, what: string): 'sha256' | null {
  const t = privateKey.asymmetricKeyType;
  if (t === 'ed25519') return null;
  if (t === 'ec' && privateKey.asymmetricKeyDetails?.namedCurve === 'prime256v1') return 'sha256';
  if (t === 'rsa' && (privateKey.asymmetricKeyDetails?.modulusLength ?? 0) >= 2048) return 'sha256';
  return invalid(what, `a ${t ?? 'unknown'} key ${privateKey.asymmetricKeyDetails?.namedCurve ?? ''} (berth signs with ECDSA P-256, RSA of 2048 bits or more, or Ed25519)`.replace(' )', ')'));
}
