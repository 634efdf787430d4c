/**
 * Making a cosign signature: the simple-signing payload cosign and
 * containers/image write for an image, signed with a cosign private key the
 * way cosign signs (see private-key.ts signingAlgorithm), base64 as the
 * `dev.cosignproject.cosign/signature` annotation holds it.
 */
import { createPublicKey, sign as cryptoSign, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import type { Digest } from '../../image/digest.ts';
import { signingAlgorithm } from './private-key.ts';

export const COSIGN_SIGNATURE_TYPE = 'cosign container image signature';

/**
 * The payload for `reference` (as signed, HOST/REPO:TAG) and `digest`.
 * `optional` null, as cosign writes it without annotations: the same
 * image and identity always give the same bytes, so signing again can
 * recognise its own signature.
 */
export function buildCosignPayload(reference: string, digest: Digest, optional: Record<string, string | number> | null = null): Buffer {
  return Buffer.from(
    JSON.stringify({
      critical: { identity: { 'docker-reference': reference }, image: { 'docker-manifest-digest': digest }, type: COSIGN_SIGNATURE_TYPE },
      optional,
    }),
  );
}

/** The base64 signature of `payload`. */
export function signCosignPayload(privateKey: KeyObject, payload: Uint8Array, what: string): string {
  const hash = signingAlgorithm(privateKey, what);
  const key = privateKey.asymmetricKeyType === 'ec' ? { key: privateKey, dsaEncoding: 'der' as const } : privateKey;
  return cryptoSign(hash, payload, key).toString('base64');
}

/** Whether `untrustedSignature` (base64) is a signature of `payload` by `privateKey`'s public half. */
export function isOwnSignature(privateKey: KeyObject, payload: Uint8Array, untrustedSignature: string): boolean {
  const sig = Buffer.from(untrustedSignature, 'base64');
  if (sig.length === 0 || sig.length > 16 * 1024 || sig.toString('base64') !== untrustedSignature) return false;
  const pub = createPublicKey(privateKey);
  const hash = pub.asymmetricKeyType === 'ed25519' ? null : 'sha256';
  try {
    return cryptoVerify(hash, payload, pub.asymmetricKeyType === 'ec' ? { key: pub, dsaEncoding: 'der' } : pub, sig);
  } catch {
    return false;
  }
}
