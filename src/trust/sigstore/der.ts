/**
 * A minimal DER reader: enough of X.509 for what node:crypto's X509Certificate
 * does not expose (every extension with its critical flag, the Fulcio OIDC
 * extensions, SAN entries one by one). Definite lengths only, minimal length
 * encodings only, nothing past the end: anything else is not DER.
 */
import { reject } from './encoding.ts';

export interface Der {
  readonly tag: number;
  /** The whole element (tag, length, contents). */
  readonly raw: Buffer;
  readonly contents: Buffer;
}

const MAX_DEPTH = 32;

/** Reads the one element at `off` of `buf`; returns it and the offset after it. */
export function readElement(buf: Buffer, off: number, what: string): [Der, number] {
  const bad = (): never => reject(`${what} is not valid DER`);
  if (off + 2 > buf.length) bad();
  const tag = buf[off] as number;
  if ((tag & 0x1f) === 0x1f) bad(); // high tag numbers: X.509 never needs them
  let len = buf[off + 1] as number;
  let p = off + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || p + n > buf.length) bad();
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + (buf[p + i] as number);
    if (buf[p] === 0 || len < 0x80) bad(); // non-minimal
    p += n;
  }
  if (p + len > buf.length) bad();
  return [{ tag, raw: buf.subarray(off, p + len), contents: buf.subarray(p, p + len) }, p + len];
}

/** Parses exactly one element filling `buf`. */
export function parseDer(buf: Buffer, what: string): Der {
  const [el, end] = readElement(buf, 0, what);
  if (end !== buf.length) reject(`${what} has trailing data after its DER`);
  return el;
}

/** The children of a constructed element (SEQUENCE, SET, [n] constructed). */
export function children(el: Der, what: string, depth = 0): Der[] {
  if ((el.tag & 0x20) === 0 || depth > MAX_DEPTH) return reject(`${what} is not a constructed DER element`);
  const out: Der[] = [];
  let off = 0;
  while (off < el.contents.length) {
    const [c, next] = readElement(el.contents, off, what);
    out.push(c);
    off = next;
  }
  return out;
}

export const TAG = { BOOLEAN: 0x01, INTEGER: 0x02, BIT_STRING: 0x03, OCTET_STRING: 0x04, OID: 0x06, UTF8: 0x0c, SEQUENCE: 0x30, SET: 0x31 } as const;

export function expectTag(el: Der | undefined, tag: number, what: string): Der {
  if (el === undefined || el.tag !== tag) return reject(`${what}: unexpected DER structure`);
  return el;
}

/** Dotted OID text of an OBJECT IDENTIFIER's contents. */
export function oidText(el: Der, what: string): string {
  const b = expectTag(el, TAG.OID, what).contents;
  if (b.length === 0) return reject(`${what}: empty OID`);
  const arcs: number[] = [];
  let v = 0;
  for (let i = 0; i < b.length; i++) {
    const byte = b[i] as number;
    if (v === 0 && byte === 0x80) return reject(`${what}: non-minimal OID`);
    v = v * 128 + (byte & 0x7f);
    if (v > Number.MAX_SAFE_INTEGER / 128) return reject(`${what}: OID arc too large`);
    if ((byte & 0x80) === 0) {
      arcs.push(v);
      v = 0;
    } else if (i === b.length - 1) return reject(`${what}: truncated OID`);
  }
  const first = arcs[0] as number;
  const head = first < 40 ? [0, first] : first < 80 ? [1, first - 40] : [2, first - 80];
  return [...head, ...arcs.slice(1)].join('.');
}
