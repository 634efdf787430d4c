/**
 * The "simple signing" payload (containers-signature(5)): a JSON document
 * naming a manifest digest and the identity the signer vouches for. Parsed
 * only after its OpenPGP signature verified, and then strictly: anything
 * unknown in `critical` rejects, so a future extension that narrows what a
 * signature means cannot be silently ignored. `optional` is free-form except
 * for the types of the two members the spec defines.
 */
import { isDigest, type Digest } from '../image/digest.ts';
import { parseDockerIdentity, type DockerIdentity } from './identity.ts';
import { isJsonObject, parseStrictJson, unexpectedMembers, type JsonValue } from '../strict-json.ts';

export const SIGNATURE_TYPE = 'atomic container signature';

export interface SignaturePayload {
  readonly dockerManifestDigest: Digest;
  readonly dockerReference: DockerIdentity;
  readonly creator: string | undefined;
  /** Seconds since the epoch. */
  readonly timestamp: number | undefined;
}

/**
 * Parses a verified signature's payload; throws Error saying what is wrong
 * with it. cosign's payloads (sigstore) have the same shape with another
 * `type`, and cosign writes `"optional": null` when it has nothing to add.
 */
export function parseUntrustedPayload(untrustedPayload: Uint8Array, expect: { type: string; optionalMayBeNull: boolean } = { type: SIGNATURE_TYPE, optionalMayBeNull: false }): SignaturePayload {
  let doc: JsonValue;
  try {
    doc = parseStrictJson(untrustedPayload);
  } catch (e) {
    throw new Error(`payload is not valid JSON: ${(e as Error).message}`);
  }
  const bad = (why: string): never => {
    throw new Error(`payload ${why}`);
  };
  if (!isJsonObject(doc)) return bad('is not a JSON object');
  const top = unexpectedMembers(doc, ['critical', 'optional']);
  if (top !== undefined) bad(`top level: ${top}`);
  const critical = doc['critical'];
  const optional = doc['optional'];
  if (!isJsonObject(critical)) return bad('critical is not an object');
  if (!isJsonObject(optional) && !(expect.optionalMayBeNull && optional === null)) return bad(`optional is not an object${expect.optionalMayBeNull ? ' nor null' : ''}`);
  const c = unexpectedMembers(critical, ['type', 'image', 'identity']);
  if (c !== undefined) bad(`critical: ${c}`);
  if (critical['type'] !== expect.type) bad(`critical.type is not "${expect.type}"`);
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
  const creator = optional?.['creator'];
  if (creator !== undefined && typeof creator !== 'string') bad('optional.creator is not a string');
  const timestamp = optional?.['timestamp'];
  if (timestamp !== undefined && !(typeof timestamp === 'number' && Number.isSafeInteger(timestamp))) bad('optional.timestamp is not an integer');
  return {
    dockerManifestDigest: digest as Digest,
    dockerReference,
    creator: creator as string | undefined,
    timestamp: timestamp as number | undefined,
  };
}

export interface PayloadFields {
  manifestDigest: Digest;
  /** The fully expanded identity, e.g. "registry.example.com/app:1.0". */
  dockerReference: string;
  creator: string;
  /** Seconds since the epoch. */
  timestamp: number;
}

/** The payload bytes to sign, in the member order containers/image writes. */
export function buildPayload(f: PayloadFields): Buffer {
  return Buffer.from(
    JSON.stringify({
      critical: {
        identity: { 'docker-reference': f.dockerReference },
        image: { 'docker-manifest-digest': f.manifestDigest },
        type: SIGNATURE_TYPE,
      },
      optional: { creator: f.creator, timestamp: f.timestamp },
    }),
  );
}
