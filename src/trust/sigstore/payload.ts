/**
 * cosign's "simple signing" payload (the layer blob of a signature
 * attachment): {"critical":{"identity":{"docker-reference":…},"image":
 * {"docker-manifest-digest":…},"type":"cosign container image signature"},
 * "optional":{…}|null}. Parsed strictly after the signature verified, as
 * containers/image does: exactly these critical members, anything unknown
 * there refuses; `optional` may hold anything, but `creator` must be a string
 * and `timestamp` an integer.
 */
import { isDigest, type Digest } from '../../image/digest.ts';
import { isJsonObject, parseStrictJson, unexpectedMembers, type JsonValue } from '../../strict-json.ts';
import { parseDockerIdentity, type DockerIdentity } from '../identity.ts';
import { reject } from './encoding.ts';

export const COSIGN_SIGNATURE_TYPE = 'cosign container image signature';
/** A payload names a digest and a reference; anything this large is not one. */
export const MAX_COSIGN_PAYLOAD_BYTES = 64 * 1024;

export interface CosignPayload {
  readonly dockerManifestDigest: Digest;
  readonly dockerReference: DockerIdentity;
  /** The reference exactly as signed (cosign signs without normalising). */
  readonly rawDockerReference: string;
}

/** Throws SigstoreRejected with "payload …" reasons. */
export function parseCosignPayload(untrustedPayload: Uint8Array): CosignPayload {
  const bad = (why: string): never => reject(`payload ${why}`);
  if (untrustedPayload.length > MAX_COSIGN_PAYLOAD_BYTES) bad(`is larger than ${MAX_COSIGN_PAYLOAD_BYTES} bytes`);
  let doc: JsonValue;
  try {
    doc = parseStrictJson(untrustedPayload);
  } catch (e) {
    return bad(`is not valid JSON: ${(e as Error).message}`);
  }
  if (!isJsonObject(doc)) return bad('is not a JSON object');
  const top = unexpectedMembers(doc, ['critical', 'optional']);
  if (top !== undefined) bad(`top level: ${top}`);
  const critical = doc['critical'];
  const optional = doc['optional'];
  if (!isJsonObject(critical)) return bad('critical is not an object');
  if (optional !== null && !isJsonObject(optional)) return bad('optional is neither an object nor null');
  const c = unexpectedMembers(critical, ['type', 'image', 'identity']);
  if (c !== undefined) bad(`critical: ${c}`);
  if (critical['type'] !== COSIGN_SIGNATURE_TYPE) bad(`critical.type is not "${COSIGN_SIGNATURE_TYPE}"`);
  const image = critical['image'];
  const identity = critical['identity'];
  if (!isJsonObject(image)) return bad('critical.image is not an object');
  if (!isJsonObject(identity)) return bad('critical.identity is not an object');
  const i = unexpectedMembers(image, ['docker-manifest-digest']);
  if (i !== undefined) bad(`critical.image: ${i}`);
  const d = unexpectedMembers(identity, ['docker-reference']);
  if (d !== undefined) bad(`critical.identity: ${d}`);
  const digest = image['docker-manifest-digest'];
  if (typeof digest !== 'string' || !isDigest(digest)) return bad('critical.image.docker-manifest-digest is not a sha256 or sha512 digest');
  const reference = identity['docker-reference'];
  if (typeof reference !== 'string') return bad('critical.identity.docker-reference is not a string');
  let dockerReference: DockerIdentity;
  try {
    dockerReference = parseDockerIdentity(reference);
  } catch (e) {
    return bad(`critical.identity.docker-reference: ${(e as Error).message}`);
  }
  if (optional !== null) {
    const creator = optional['creator'];
    if (creator !== undefined && typeof creator !== 'string') bad('optional.creator is not a string');
    const timestamp = optional['timestamp'];
    if (timestamp !== undefined && !(typeof timestamp === 'number' && Number.isSafeInteger(timestamp))) bad('optional.timestamp is not an integer');
  }
  return { dockerManifestDigest: digest as Digest, dockerReference, rawDockerReference: reference };
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
