/**
 * Making a cosign signature: the simple-signing payload (payload.ts) signed
 * with a cosign private key the way cosign signs (see private-key.ts
 * signingAlgorithm), base64 as the `dev.cosignproject.cosign/signature`
 * annotation holds it.
 */
import { createPublicKey, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { publicKeyOf, verifySignature } from './keys.ts';
import { signingAlgorithm } from './private-key.ts';

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
  return verifySignature(publicKeyOf(createPublicKey(privateKey), 'the signing key'), payload, sig);
}
