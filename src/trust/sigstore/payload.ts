/**
 * cosign's "simple signing" payload (the layer blob of a signature
 * attachment): {"critical":{"identity":{"docker-reference":…},"image":
 * {"docker-manifest-digest":…},"type":"cosign container image signature"},
 * "optional":{…}|null}. The same strict parser as containers-signature(5)
 * payloads (trust/payload.ts: exactly these critical members, anything
 * unknown there refuses), with cosign's type and a null `optional` allowed,
 * after a size limit.
 */
import type { Digest } from '../../image/digest.ts';
import { parseUntrustedPayload, type SignaturePayload } from '../payload.ts';
import { reject } from './encoding.ts';

export const COSIGN_SIGNATURE_TYPE = 'cosign container image signature';
/** A payload names a digest and a reference; anything this large is not one. */
export const MAX_COSIGN_PAYLOAD_BYTES = 64 * 1024;

/** Throws SigstoreRejected with "payload …" reasons. */
export function parseCosignPayload(untrustedPayload: Uint8Array): SignaturePayload {
  if (untrustedPayload.length > MAX_COSIGN_PAYLOAD_BYTES) reject(`payload is larger than ${MAX_COSIGN_PAYLOAD_BYTES} bytes`);
  try {
    return parseUntrustedPayload(untrustedPayload, { type: COSIGN_SIGNATURE_TYPE, optionalMayBeNull: true });
  } catch (e) {
    return reject((e as Error).message);
  }
}

/** The payload cosign writes for `reference` (as signed, e.g. "registry.example/app") and `digest`. */
export function buildCosignPayload(reference: string, digest: Digest, optional: Record<string, string | number> | null = null): Buffer {
  return Buffer.from(
    JSON.stringify({
      critical: { identity: { 'docker-reference': reference }, image: { 'docker-manifest-digest': digest }, type: COSIGN_SIGNATURE_TYPE },
      optional,
    }),
  );
}
