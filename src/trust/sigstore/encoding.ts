import { isJsonObject, unexpectedMembers, type JsonObject, type JsonValue } from '../../strict-json.ts';

/**
 * Strict decoders for the text encodings sigstore material arrives in:
 * base64 that has exactly one spelling (so two verifiers cannot read two
 * different byte strings out of it) and PEM blocks with nothing in between.
 */

/** Thrown with a one-line reason by the sigstore checks; the requirement turns it into a refusal. */
export class SigstoreRejected extends Error {
  override name = 'SigstoreRejected';
}

export const reject = (why: string): never => {
  throw new SigstoreRejected(why);
};

const base64Re = /^[A-Za-z0-9+/]*={0,2}$/;

/** Canonical standard base64 (padded, no whitespace, no stray bits); throws SigstoreRejected naming `what`. */
export function decodeBase64(s: string, what: string): Buffer {
  if (s.length === 0 || s.length % 4 !== 0 || !base64Re.test(s)) reject(`${what} is not base64`);
  const b = Buffer.from(s, 'base64');
  if (b.toString('base64') !== s) reject(`${what} is not canonical base64`);
  return b;
}

export interface PemBlock {
  readonly label: string;
  readonly der: Buffer;
}

const pemRe = /^-----BEGIN ([A-Z0-9 ]+)-----\r?\n([A-Za-z0-9+/=\r\n]+?)\r?\n?-----END \1-----\r?\n?/;

/**
 * The PEM blocks of `text`, in order. Only whitespace may separate blocks
 * (no explanatory text: nothing else to misread); each body is canonical base64.
 */
export function parsePem(text: string, what: string): PemBlock[] {
  const blocks: PemBlock[] = [];
  let rest = text.replace(/^\s+/, '');
  while (rest.length > 0) {
    const m = pemRe.exec(rest);
    if (m === null) return reject(`${what} is not a sequence of PEM blocks`);
    const body = (m[2] as string).replace(/\r?\n/g, '');
    blocks.push({ label: m[1] as string, der: decodeBase64(body, `${what} (PEM ${m[1]})`) });
    rest = rest.slice(m[0].length).replace(/^\s+/, '');
  }
  if (blocks.length === 0) reject(`${what} holds no PEM block`);
  return blocks;
}

/** The DER certificates of PEM text (CERTIFICATE blocks only). */
export function pemCertificates(text: string, what: string): Buffer[] {
  return parsePem(text, what).map((b) => (b.label === 'CERTIFICATE' ? b.der : reject(`${what} holds a PEM ${b.label}, not a CERTIFICATE`)));
}

/** RFC 8785 (JCS) canonical JSON of a value parsed by strict-json (numbers as JSON numbers, keys sorted by UTF-16 code units). */
export function canonicalJson(v: unknown): string {
  if (v === null || typeof v === 'boolean' || typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) return reject('a number in canonical JSON is not finite');
    return JSON.stringify(v); // ECMAScript number serialisation is what RFC 8785 prescribes
  }
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (typeof v === 'object') {
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(',')}}`;
  }
  return reject('unexpected value in canonical JSON');
}

/** `v` as an object with exactly the `required` members plus any of `optional`; refuses naming `where`. */
export function jsonObject(v: JsonValue | undefined, where: string, required: readonly string[], optional: readonly string[] = []): JsonObject {
  if (!isJsonObject(v)) return reject(`${where} is not an object`);
  const bad = unexpectedMembers(v, required, optional);
  if (bad !== undefined) reject(`${where}: ${bad}`);
  return v;
}

export function jsonString(o: JsonObject, k: string, where: string): string {
  const v = o[k];
  if (typeof v !== 'string') return reject(`${where}.${k} is not a string`);
  return v;
}
