/**
 * Public keys as cosign and sigstore use them, and the one way berth verifies
 * a signature with each: ECDSA P-256/P-384/P-521 (ASN.1 DER signature over
 * SHA-256, as cosign hard-codes for image signatures), RSA of 2048 bits or more
 * (PKCS #1 v1.5, SHA-256) and Ed25519 (pure). Anything else is refused.
 */
import { createPublicKey, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { parsePem, reject } from './encoding.ts';

export type KeyKind = 'ecdsa-p256' | 'ecdsa-p384' | 'ecdsa-p521' | 'rsa' | 'ed25519';

export interface PublicKey {
  readonly kind: KeyKind;
  readonly key: KeyObject;
  /** SubjectPublicKeyInfo DER, for comparing with what a Rekor entry names. */
  readonly spki: Buffer;
}

const curves: Record<string, KeyKind> = { prime256v1: 'ecdsa-p256', secp384r1: 'ecdsa-p384', secp521r1: 'ecdsa-p521' };

/** Classifies a KeyObject; throws SigstoreRejected for algorithms berth does not accept. */
export function publicKeyOf(key: KeyObject, what: string): PublicKey {
  if (key.type !== 'public') return reject(`${what} is not a public key`);
  let kind: KeyKind | undefined;
  if (key.asymmetricKeyType === 'ec') kind = curves[key.asymmetricKeyDetails?.namedCurve ?? ''];
  else if (key.asymmetricKeyType === 'ed25519') kind = 'ed25519';
  else if (key.asymmetricKeyType === 'rsa') {
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < 2048) return reject(`${what} is an RSA key of ${bits} bits (at least 2048 are required)`);
    kind = 'rsa';
  }
  if (kind === undefined) return reject(`${what} uses an unsupported algorithm (${key.asymmetricKeyType ?? '?'} ${key.asymmetricKeyDetails?.namedCurve ?? ''})`.trimEnd());
  return { kind, key, spki: key.export({ type: 'spki', format: 'der' }) };
}

/** A public key from SPKI DER; throws SigstoreRejected. */
export function publicKeyFromSpki(der: Buffer, what: string): PublicKey {
  let key: KeyObject;
  try {
    key = createPublicKey({ key: der, format: 'der', type: 'spki' });
  } catch {
    return reject(`${what} is not a valid public key`);
  }
  return publicKeyOf(key, what);
}

/** Every PUBLIC KEY block of a PEM blob (cosign.pub holds one). */
export function publicKeysFromPem(pem: Buffer, what: string): PublicKey[] {
  const blocks = parsePem(pem.toString('latin1'), what);
  return blocks.map((b, i) => {
    const name = blocks.length === 1 ? what : `${what} (key ${i + 1})`;
    if (b.label !== 'PUBLIC KEY') return reject(`${name} is a PEM ${b.label}, not a PUBLIC KEY`);
    return publicKeyFromSpki(b.der, name);
  });
}

/** Whether `signature` over `data` verifies with `key` (hash per kind, see the module comment). */
export function verifySignature(key: PublicKey, data: Uint8Array, signature: Uint8Array): boolean {
  try {
    if (key.kind === 'ed25519') return cryptoVerify(null, data, key.key, signature);
    // ECDSA signatures are DER; node rejects other encodings with dsaEncoding 'der'.
    return cryptoVerify('sha256', data, key.kind === 'rsa' ? key.key : { key: key.key, dsaEncoding: 'der' }, signature);
  } catch {
    return false;
  }
}
