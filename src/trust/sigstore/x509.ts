/**
 * X.509 for sigstore: parsing a certificate strictly enough to refuse what
 * berth does not understand (unknown critical extensions), building a chain
 * from a leaf to a pinned root at one instant, and reading the identity a
 * Fulcio or PKI certificate carries (SAN emails, URIs, DNS names; the Fulcio
 * OIDC issuer extensions). Signatures are checked by node:crypto.
 */
import { X509Certificate } from 'node:crypto';
import { children, expectTag, oidText, parseDer, TAG, type Der } from './der.ts';
import { reject } from './encoding.ts';
import { publicKeyOf, type PublicKey } from './keys.ts';

export const OID = {
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  subjectAltName: '2.5.29.17',
  subjectKeyId: '2.5.29.14',
  authorityKeyId: '2.5.29.35',
  codeSigning: '1.3.6.1.5.5.7.3.3',
  anyExtendedKeyUsage: '2.5.29.37.0',
  /** Fulcio's OIDC issuer, deprecated form: the raw issuer string as the extension value. */
  fulcioIssuerV1: '1.3.6.1.4.1.57264.1.1',
  /** Fulcio's OIDC issuer: a DER UTF8String. */
  fulcioIssuerV2: '1.3.6.1.4.1.57264.1.8',
} as const;

/** Critical extensions berth evaluates (or, for SAN, matches itself); any other critical one refuses the certificate. */
const UNDERSTOOD_CRITICAL: ReadonlySet<string> = new Set([OID.basicConstraints, OID.keyUsage, OID.extKeyUsage, OID.subjectAltName, OID.subjectKeyId, OID.authorityKeyId]);
const MAX_CHAIN = 8;
const MAX_CERT_BYTES = 64 * 1024;

export interface Certificate {
  readonly der: Buffer;
  readonly x509: X509Certificate;
  readonly subject: string;
  /** ms since the epoch */
  readonly notBefore: number;
  readonly notAfter: number;
  readonly extensions: ReadonlyMap<string, { readonly critical: boolean; readonly value: Buffer }>;
  readonly isCA: boolean;
  readonly pathLen: number | undefined;
  /** KeyUsage bits (bit 0 = digitalSignature, 5 = keyCertSign), undefined without the extension */
  readonly keyUsage: ((bit: number) => boolean) | undefined;
  readonly extKeyUsage: readonly string[] | undefined;
  readonly emails: readonly string[];
  readonly uris: readonly string[];
  readonly dnsNames: readonly string[];
  readonly publicKey: PublicKey;
}

function parseTime(el: Der, what: string): number {
  const s = el.contents.toString('latin1');
  let m: RegExpExecArray | null;
  if (el.tag === 0x17 && (m = /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s)) !== null) {
    const yy = Number(m[1]);
    return Date.UTC(yy < 50 ? 2000 + yy : 1900 + yy, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
  }
  if (el.tag === 0x18 && (m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s)) !== null) {
    return Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
  }
  return reject(`${what}: invalid validity time`);
}

/** Parses one DER certificate; throws SigstoreRejected naming `what`. */
export function parseCertificate(der: Buffer, what: string): Certificate {
  if (der.length > MAX_CERT_BYTES) reject(`${what} is larger than ${MAX_CERT_BYTES} bytes`);
  const cert = parseDer(der, what);
  const [tbs] = children(expectTag(cert, TAG.SEQUENCE, what), what);
  const fields = children(expectTag(tbs, TAG.SEQUENCE, what), what);
  let i = 0;
  if (fields[0]?.tag === 0xa0) i++; // [0] version
  const validity = children(expectTag(fields[i + 3], TAG.SEQUENCE, `${what} validity`), what);
  const notBefore = parseTime(validity[0] as Der, what);
  const notAfter = parseTime(validity[1] as Der, what);
  const extensions = new Map<string, { critical: boolean; value: Buffer }>();
  for (const f of fields.slice(i + 6)) {
    if (f.tag !== 0xa3) continue; // [1]/[2] unique ids
    const [list] = children(f, what);
    for (const ext of children(expectTag(list, TAG.SEQUENCE, `${what} extensions`), what)) {
      const parts = children(expectTag(ext, TAG.SEQUENCE, `${what} extension`), what);
      const oid = oidText(parts[0] as Der, what);
      let critical = false;
      let valueEl = parts[1];
      if (valueEl?.tag === TAG.BOOLEAN) {
        critical = valueEl.contents.length === 1 && valueEl.contents[0] === 0xff;
        if (!critical) reject(`${what}: extension ${oid} has a non-DER critical flag`); // DEFAULT FALSE must be omitted
        valueEl = parts[2];
      }
      if (extensions.has(oid)) reject(`${what} has extension ${oid} twice`);
      extensions.set(oid, { critical, value: expectTag(valueEl, TAG.OCTET_STRING, `${what} extension ${oid}`).contents });
    }
  }
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(der);
  } catch {
    return reject(`${what} is not a valid X.509 certificate`);
  }
  let isCA = false;
  let pathLen: number | undefined;
  const bc = extensions.get(OID.basicConstraints);
  if (bc !== undefined) {
    const parts = children(expectTag(parseDer(bc.value, what), TAG.SEQUENCE, `${what} basicConstraints`), what);
    let p = 0;
    if (parts[0]?.tag === TAG.BOOLEAN) {
      isCA = parts[0].contents[0] === 0xff;
      p++;
    }
    const pl = parts[p];
    if (pl !== undefined) {
      expectTag(pl, TAG.INTEGER, `${what} pathLenConstraint`);
      if (pl.contents.length > 2 || (pl.contents[0] as number) & 0x80) reject(`${what}: invalid pathLenConstraint`);
      pathLen = pl.contents.readUIntBE(0, pl.contents.length);
    }
  }
  let keyUsage: ((bit: number) => boolean) | undefined;
  const ku = extensions.get(OID.keyUsage);
  if (ku !== undefined) {
    const bits = expectTag(parseDer(ku.value, what), TAG.BIT_STRING, `${what} keyUsage`).contents;
    keyUsage = (bit) => (((bits[1 + (bit >> 3)] ?? 0) as number) & (0x80 >> (bit & 7))) !== 0;
  }
  let extKeyUsage: string[] | undefined;
  const eku = extensions.get(OID.extKeyUsage);
  if (eku !== undefined) extKeyUsage = children(expectTag(parseDer(eku.value, what), TAG.SEQUENCE, `${what} extKeyUsage`), what).map((o) => oidText(o, what));
  const emails: string[] = [];
  const uris: string[] = [];
  const dnsNames: string[] = [];
  const san = extensions.get(OID.subjectAltName);
  if (san !== undefined) {
    for (const name of children(expectTag(parseDer(san.value, what), TAG.SEQUENCE, `${what} subjectAltName`), what)) {
      const text = (): string => {
        const s = name.contents.toString('latin1');
        if (!/^[\x20-\x7e]*$/.test(s)) reject(`${what}: a subjectAltName entry is not printable ASCII`);
        return s;
      };
      if (name.tag === 0x81) emails.push(text());
      else if (name.tag === 0x82) dnsNames.push(text());
      else if (name.tag === 0x86) uris.push(text());
    }
  }
  return {
    der,
    x509,
    subject: ((x509.subject as string | undefined) ?? '').replace(/\n/g, ', ') || `(no subject; ${[...emails, ...uris, ...dnsNames][0] ?? 'no SAN'})`,
    notBefore,
    notAfter,
    extensions,
    isCA,
    pathLen,
    keyUsage,
    extKeyUsage,
    emails,
    uris,
    dnsNames,
    publicKey: publicKeyOf(x509.publicKey, `${what}'s public key`),
  };
}

const iso = (ms: number): string => new Date(ms).toISOString().replace('.000Z', 'Z');

function checkCertificate(c: Certificate, at: number, role: string): void {
  for (const [oid, e] of c.extensions) if (e.critical && !UNDERSTOOD_CRITICAL.has(oid)) reject(`${role} ${c.subject} has an unknown critical extension ${oid}`);
  if (at < c.notBefore || at > c.notAfter) reject(`${role} ${c.subject} is not valid at ${iso(at)} (valid ${iso(c.notBefore)} to ${iso(c.notAfter)})`);
  if (c.extKeyUsage !== undefined && !c.extKeyUsage.includes(OID.codeSigning) && !c.extKeyUsage.includes(OID.anyExtendedKeyUsage)) {
    reject(`${role} ${c.subject} is not for code signing (extKeyUsage)`);
  }
}

function issued(issuer: Certificate, child: Certificate): boolean {
  try {
    return child.x509.checkIssued(issuer.x509) && child.x509.verify(issuer.x509.publicKey);
  } catch {
    return false;
  }
}

/**
 * Verifies that `leaf` chains to one of `roots` through `intermediates`, every
 * certificate valid at `at` (ms) for code signing, every issuer a CA within its
 * path length. Throws SigstoreRejected naming the first reason found.
 */
export function verifyChain(leaf: Certificate, intermediates: readonly Certificate[], roots: readonly Certificate[], at: number): Certificate[] {
  checkCertificate(leaf, at, 'the certificate');
  if (leaf.isCA) reject(`the certificate ${leaf.subject} is a CA certificate, not a signing certificate`);
  let why = `its issuer ${((leaf.x509.issuer as string | undefined) ?? '(empty)').replace(/\n/g, ', ')} is not a trusted CA`;
  const walk = (c: Certificate, path: Certificate[]): Certificate[] | undefined => {
    if (path.length > MAX_CHAIN) return undefined;
    for (const root of roots) {
      if (!issued(root, c)) continue;
      try {
        checkIssuer(root, path.length - 1, at, 'the root CA');
        return [...path, root];
      } catch (e) {
        why = (e as Error).message;
      }
    }
    for (const im of intermediates) {
      if (path.some((p) => p.der.equals(im.der)) || !issued(im, c)) continue;
      try {
        checkIssuer(im, path.length - 1, at, 'the intermediate CA');
      } catch (e) {
        why = (e as Error).message;
        continue;
      }
      const done = walk(im, [...path, im]);
      if (done !== undefined) return done;
    }
    return undefined;
  };
  const chain = walk(leaf, [leaf]);
  if (chain === undefined) return reject(`the certificate chain does not verify: ${why}`);
  return chain;
}

/** `below`: how many intermediates lie between this issuer and the leaf. */
function checkIssuer(c: Certificate, below: number, at: number, role: string): void {
  checkCertificate(c, at, role);
  if (!c.isCA) reject(`${role} ${c.subject} is not a CA (basicConstraints)`);
  if (c.keyUsage !== undefined && !c.keyUsage(5)) reject(`${role} ${c.subject} may not sign certificates (keyUsage)`);
  if (c.pathLen !== undefined && below > c.pathLen) reject(`${role} ${c.subject} allows ${c.pathLen} intermediates below it, the chain has ${below}`);
}

/** The OIDC issuer Fulcio recorded; throws when absent or inconsistent. */
export function fulcioIssuer(c: Certificate): string {
  const v1 = c.extensions.get(OID.fulcioIssuerV1);
  const v2 = c.extensions.get(OID.fulcioIssuerV2);
  let v2Text: string | undefined;
  if (v2 !== undefined) {
    const el = parseDer(v2.value, 'the Fulcio issuer extension');
    v2Text = expectTag(el, TAG.UTF8, 'the Fulcio issuer extension').contents.toString('utf8');
  }
  const v1Text = v1?.value.toString('utf8');
  if (v1Text !== undefined && v2Text !== undefined && v1Text !== v2Text) reject(`the certificate names two OIDC issuers (${JSON.stringify(v1Text)} and ${JSON.stringify(v2Text)})`);
  const issuer = v2Text ?? v1Text;
  if (issuer === undefined) return reject('the certificate has no Fulcio OIDC issuer extension (1.3.6.1.4.1.57264.1.1 or .1.8)');
  return issuer;
}

/** RFC 6125-style host name match against the DNS SANs (one leading "*." label allowed). */
export function matchesHostname(c: Certificate, host: string): boolean {
  const h = host.toLowerCase().replace(/\.$/, '');
  return c.dnsNames.some((n) => {
    const d = n.toLowerCase();
    if (d === h) return true;
    if (!d.startsWith('*.')) return false;
    const dot = h.indexOf('.');
    return dot > 0 && h.slice(dot) === d.slice(1);
  });
}
