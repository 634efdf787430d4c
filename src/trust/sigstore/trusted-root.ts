/**
 * A pinned trusted_root.json (sigstore protobuf-specs TrustedRoot,
 * application/vnd.dev.sigstore.trustedroot+json;version=0.1): the Rekor logs'
 * keys and the Fulcio CAs' chains, each with the window it may be trusted in.
 * Only what bundle verification uses is read (tlogs, certificateAuthorities);
 * the file is the operator's, but it is still parsed strictly where read.
 */
import { readFile } from 'node:fs/promises';
import { isJsonObject, parseStrictJson, type JsonObject, type JsonValue } from '../../strict-json.ts';
import { decodeBase64, reject } from './encoding.ts';
import { logIdOf } from './rekor.ts';
import { publicKeyFromSpki, type PublicKey } from './keys.ts';
import { parseCertificate, type Certificate } from './x509.ts';

export const TRUSTED_ROOT_MEDIA_TYPE = 'application/vnd.dev.sigstore.trustedroot+json;version=0.1';
const MAX_BYTES = 4 * 1024 * 1024;

interface Window {
  /** ms */
  readonly start: number;
  readonly end: number;
}

export interface TrustedRoot {
  readonly tlogs: readonly { readonly key: PublicKey; readonly logId: string; readonly validFor: Window }[];
  /** certChain[0] issues leaves; the last is the root */
  readonly cas: readonly { readonly chain: readonly Certificate[]; readonly validFor: Window }[];
}

const within = (w: Window, at: number): boolean => at >= w.start && at <= w.end;

function windowOf(v: JsonValue | undefined, where: string): Window {
  if (!isJsonObject(v)) return reject(`${where}.validFor is missing`);
  const t = (x: JsonValue | undefined, k: string): number => {
    if (x === undefined && k === 'end') return Number.POSITIVE_INFINITY;
    const ms = typeof x === 'string' && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/.test(x) ? Date.parse(x) : Number.NaN;
    if (Number.isNaN(ms)) reject(`${where}.validFor.${k} is not an RFC 3339 UTC time`);
    return ms;
  };
  return { start: t(v['start'], 'start'), end: t(v['end'], 'end') };
}

const member = (o: JsonObject, k: string, where: string): JsonObject => {
  const v = o[k];
  if (!isJsonObject(v)) return reject(`${where}.${k} is not an object`);
  return v;
};
const array = (o: JsonObject, k: string, where: string): JsonValue[] => {
  const v = o[k] ?? [];
  if (!Array.isArray(v)) return reject(`${where}.${k} is not an array`);
  return v;
};
const b64 = (o: JsonObject, k: string, where: string): Buffer => {
  const v = o[k];
  if (typeof v !== 'string') return reject(`${where}.${k} is not a string`);
  return decodeBase64(v, `${where}.${k}`);
};

export function parseTrustedRoot(bytes: Buffer, what: string): TrustedRoot {
  if (bytes.length > MAX_BYTES) reject(`${what} is larger than ${MAX_BYTES} bytes`);
  let doc: JsonValue;
  try {
    doc = parseStrictJson(bytes);
  } catch (e) {
    return reject(`${what} is not valid JSON: ${(e as Error).message}`);
  }
  if (!isJsonObject(doc)) return reject(`${what} is not a JSON object`);
  if (doc['mediaType'] !== TRUSTED_ROOT_MEDIA_TYPE) reject(`${what} has mediaType ${JSON.stringify(doc['mediaType'])}, not ${TRUSTED_ROOT_MEDIA_TYPE}`);
  const tlogs = array(doc, 'tlogs', what).map((t, i) => {
    const w = `${what} tlogs[${i}]`;
    if (!isJsonObject(t)) return reject(`${w} is not an object`);
    const pk = member(t, 'publicKey', w);
    const key = publicKeyFromSpki(b64(pk, 'rawBytes', `${w}.publicKey`), `${w}.publicKey`);
    const logId = b64(member(t, 'logId', w), 'keyId', `${w}.logId`).toString('hex');
    if (logId !== logIdOf(key)) reject(`${w}.logId is not the SHA-256 of its public key`);
    return { key, logId, validFor: windowOf(pk['validFor'], `${w}.publicKey`) };
  });
  const cas = array(doc, 'certificateAuthorities', what).map((c, i) => {
    const w = `${what} certificateAuthorities[${i}]`;
    if (!isJsonObject(c)) return reject(`${w} is not an object`);
    const certs = array(member(c, 'certChain', w), 'certificates', `${w}.certChain`);
    if (certs.length === 0) reject(`${w}.certChain has no certificates`);
    const chain = certs.map((x, j) => (isJsonObject(x) ? parseCertificate(b64(x, 'rawBytes', `${w}.certChain.certificates[${j}]`), `${w} certificate ${j + 1}`) : reject(`${w}.certChain.certificates[${j}] is not an object`)));
    return { chain, validFor: windowOf(c['validFor'], w) };
  });
  return { tlogs, cas };
}

export async function loadTrustedRoot(file: string): Promise<TrustedRoot> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (e) {
    return reject(`cannot read the trusted root ${file}: ${(e as Error).message}`);
  }
  return parseTrustedRoot(bytes, file);
}

/** The Rekor keys trusted at `at` (ms). */
export const tlogKeysAt = (root: TrustedRoot, at: number): PublicKey[] => root.tlogs.filter((t) => within(t.validFor, at)).map((t) => t.key);

/** Roots and intermediates of the CAs trusted at `at` (ms). */
export function casAt(root: TrustedRoot, at: number): { roots: Certificate[]; intermediates: Certificate[] } {
  const valid = root.cas.filter((c) => within(c.validFor, at));
  return { roots: valid.map((c) => c.chain[c.chain.length - 1] as Certificate), intermediates: valid.flatMap((c) => c.chain.slice(0, -1)) };
}
