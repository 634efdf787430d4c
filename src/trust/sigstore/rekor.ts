/**
 * Rekor's Signed Entry Timestamp (SET), verified offline: the log's key signed
 * (ECDSA, SHA-256) the RFC 8785 canonical JSON of {body, integratedTime,
 * logID, logIndex}; the body is a hashedrekord v0.0.1 entry that must name
 * this signature, this key or certificate and the SHA-256 of this payload.
 * The SET's integratedTime is then the time the signature is known to have
 * existed, at which a keyless certificate must have been valid.
 */
import { createHash } from 'node:crypto';
import { parseStrictJson, type JsonObject, type JsonValue } from '../../strict-json.ts';
import { canonicalJson, decodeBase64, jsonObject, jsonString, parsePem, reject } from './encoding.ts';
import { verifySignature, type PublicKey } from './keys.ts';

const MAX_SET_BYTES = 256 * 1024;

export interface RekorEntry {
  /** base64 of the canonicalized hashedrekord body */
  readonly body: string;
  readonly integratedTime: number;
  readonly logIndex: number;
  /** hex SHA-256 of the log's public key (SPKI DER) */
  readonly logID: string;
}

export interface VerifiedEntry {
  /** seconds since the epoch */
  readonly integratedTime: number;
  readonly logIndex: number;
}

/** The log ID of a Rekor key: hex SHA-256 of its SubjectPublicKeyInfo. */
export const logIdOf = (key: PublicKey): string => createHash('sha256').update(key.spki).digest('hex');

const obj = jsonObject;
const str = jsonString;
const int = (o: JsonObject, k: string, where: string): number => {
  const v = o[k];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) return reject(`${where}.${k} is not a non-negative integer`);
  return v;
};

/** Parses cosign's bundle annotation ({"SignedEntryTimestamp","Payload"}). */
export function parseCosignSet(untrusted: string): { set: Buffer; entry: RekorEntry } {
  if (untrusted.length > MAX_SET_BYTES) reject(`the Rekor SET is larger than ${MAX_SET_BYTES} bytes`);
  let doc: JsonValue;
  try {
    doc = parseStrictJson(untrusted);
  } catch (e) {
    return reject(`the Rekor SET is not valid JSON: ${(e as Error).message}`);
  }
  const top = obj(doc, 'the Rekor SET', ['SignedEntryTimestamp', 'Payload']);
  const p = obj(top['Payload'], 'the Rekor SET Payload', ['body', 'integratedTime', 'logIndex', 'logID']);
  const entry = { body: str(p, 'body', 'Payload'), integratedTime: int(p, 'integratedTime', 'Payload'), logIndex: int(p, 'logIndex', 'Payload'), logID: str(p, 'logID', 'Payload') };
  return { set: decodeBase64(str(top, 'SignedEntryTimestamp', 'the Rekor SET'), 'the Rekor SET signature'), entry };
}

/**
 * Verifies `set` over `entry` with one of `rekorKeys` (whose log ID must be
 * the entry's), then that the entry records `signature` by `keyOrCertDer`
 * over `payload`. Throws SigstoreRejected.
 */
export function verifySet(
  rekorKeys: readonly PublicKey[],
  set: Buffer,
  entry: RekorEntry,
  expected: { signature: Buffer; keyOrCertDer: Buffer; payload: Uint8Array },
): VerifiedEntry {
  verifySetSignature(rekorKeys, set, entry);
  checkHashedRekord(decodeBase64(entry.body, 'the Rekor entry body'), expected);
  return { integratedTime: entry.integratedTime, logIndex: entry.logIndex };
}

/** The SET's signature alone: by the trusted log whose ID the entry names. Returns that log's key. */
export function verifySetSignature(rekorKeys: readonly PublicKey[], set: Buffer, entry: RekorEntry): PublicKey {
  const key = rekorKeys.find((k) => logIdOf(k) === entry.logID);
  if (key === undefined) return reject(`the Rekor SET is from log ${entry.logID.slice(0, 80)}, not from a trusted Rekor key`);
  const signed = canonicalJson({ body: entry.body, integratedTime: entry.integratedTime, logID: entry.logID, logIndex: entry.logIndex });
  if (!verifySignature(key, Buffer.from(signed), set)) reject('the Rekor SET signature does not verify with the trusted Rekor key');
  return key;
}

/** The hashedrekord v0.0.1 body must bind this signature, key/certificate and payload digest. */
export function checkHashedRekord(untrustedBody: Buffer, expected: { signature: Buffer; keyOrCertDer: Buffer; payload: Uint8Array }): void {
  let doc: JsonValue;
  try {
    doc = parseStrictJson(untrustedBody);
  } catch (e) {
    return reject(`the Rekor entry body is not valid JSON: ${(e as Error).message}`);
  }
  const top = obj(doc, 'the Rekor entry body', ['apiVersion', 'kind', 'spec']);
  if (top['kind'] !== 'hashedrekord' || top['apiVersion'] !== '0.0.1') reject(`the Rekor entry is not a hashedrekord 0.0.1 (${JSON.stringify(top['kind'])} ${JSON.stringify(top['apiVersion'])})`);
  const spec = obj(top['spec'], 'the Rekor entry spec', ['data', 'signature']);
  const data = obj(spec['data'], 'the Rekor entry data', ['hash']);
  const hash = obj(data['hash'], 'the Rekor entry data.hash', ['algorithm', 'value']);
  const sig = obj(spec['signature'], 'the Rekor entry signature', ['content', 'publicKey']);
  const pk = obj(sig['publicKey'], 'the Rekor entry signature.publicKey', ['content']);
  if (hash['algorithm'] !== 'sha256') reject(`the Rekor entry hashes with ${JSON.stringify(hash['algorithm'])}, not sha256`);
  const want = createHash('sha256').update(expected.payload).digest('hex');
  if (str(hash, 'value', 'data.hash') !== want) reject('the Rekor entry is for another payload (data.hash does not match)');
  if (!decodeBase64(str(sig, 'content', 'signature'), 'the Rekor entry signature').equals(expected.signature)) reject('the Rekor entry is for another signature');
  const pem = decodeBase64(str(pk, 'content', 'signature.publicKey'), 'the Rekor entry public key');
  const blocks = parsePem(pem.toString('latin1'), 'the Rekor entry public key');
  if (blocks.length !== 1 || !(blocks[0] as { der: Buffer }).der.equals(expected.keyOrCertDer)) reject('the Rekor entry is for another key or certificate');
}
