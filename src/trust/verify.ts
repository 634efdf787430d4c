/**
 * Verifying one signature blob: first the OpenPGP signature (a Signed Message,
 * RFC 4880 11.3, as `gpg --sign` makes: usually compressed, data inline) against
 * the requirement's keys, and only then the payload it carries.
 */
import * as openpgp from 'openpgp';
import { algorithmOf, digestOf } from '../image/digest.ts';
import type { ImageReference } from '../transport/reference.ts';
import { fingerprintOf } from './keys.ts';
import { MAX_SIGNATURE_BYTES } from './limits.ts';
import { identityMismatch } from './match.ts';
import { parseUntrustedPayload, type SignaturePayload } from './payload.ts';
import type { SignedIdentity } from './policy.ts';

/** Decompressing a small signature must not produce a large payload (compression bombs). */
const MAX_PAYLOAD_BYTES = 4 * 1024 * 1024;

const pgpConfig: openpgp.PartialConfig = { maxDecompressedMessageSize: MAX_PAYLOAD_BYTES };

/** Thrown (with a one-line reason) when a signature is not acceptable. */
export class SignatureRejected extends Error {
  override name = 'SignatureRejected';
}

export interface VerifiedMessage {
  /** The signed data: authentic, but still to be checked for what it says. */
  readonly signedData: Uint8Array;
  /** Fingerprint of the primary key whose (sub)key made the signature. */
  readonly fingerprint: string;
}

const keyIdHex = (id: openpgp.KeyID): string => id.toHex().toUpperCase();
/** openpgp's messages are English one-liners, but may quote untrusted bytes. */
const clean = (s: string): string => s.replace(/[^\x20-\x7e]/g, '?').slice(0, 300);

/** Verifies an OpenPGP signed message against `keys`; throws SignatureRejected saying why not. */
export async function verifySignedMessage(untrustedSignature: Uint8Array, keys: readonly openpgp.PublicKey[]): Promise<VerifiedMessage> {
  if (untrustedSignature.length > MAX_SIGNATURE_BYTES) throw new SignatureRejected(`larger than ${MAX_SIGNATURE_BYTES} bytes`);
  let message: openpgp.Message<Uint8Array>;
  try {
    message = await openpgp.readMessage({ binaryMessage: untrustedSignature, config: pgpConfig });
  } catch (e) {
    throw new SignatureRejected(`not an OpenPGP signed message (${clean((e as Error).message)})`);
  }
  const signerIds = message.getSigningKeyIDs();
  if (signerIds.length === 0) throw new SignatureRejected('not a signed OpenPGP message');
  const candidates = keys.filter((k) => signerIds.some((id) => k.getKeys(id).length > 0));
  if (candidates.length === 0) {
    throw new SignatureRejected(`signed by key ${signerIds.map(keyIdHex).join(', ')}, which this requirement does not trust`);
  }
  let result: openpgp.VerifyMessageResult<Uint8Array>;
  try {
    result = await openpgp.verify({ message, verificationKeys: candidates, expectSigned: false, format: 'binary', config: pgpConfig });
  } catch (e) {
    throw new SignatureRejected(`invalid OpenPGP signature (${clean((e as Error).message)})`);
  }
  let firstError: string | undefined;
  for (const sig of result.signatures) {
    try {
      if (!(await sig.verified)) continue;
    } catch (e) {
      firstError ??= clean((e as Error).message);
      continue;
    }
    const key = candidates.find((k) => k.getKeys(sig.keyID).length > 0);
    if (key === undefined) continue;
    // openpgp judges the key as of the signature's creation time; a key that has
    // since expired or been revoked (e.g. after a compromise) must not vouch any more.
    try {
      await key.getSigningKey(sig.keyID, new Date());
    } catch (e) {
      firstError ??= `key ${fingerprintOf(key)} is no longer valid: ${clean((e as Error).message)}`;
      continue;
    }
    return { signedData: result.data, fingerprint: fingerprintOf(key) };
  }
  throw new SignatureRejected(`invalid OpenPGP signature (${firstError ?? 'no signature verified'})`);
}

export interface AcceptedSignature {
  readonly fingerprint: string;
  readonly payload: SignaturePayload;
}

/**
 * The whole check of one image signature for a signedBy requirement: the
 * cryptographic signature, then the payload's type, manifest digest (of the
 * exact `untrustedManifestBytes`) and identity. Throws SignatureRejected.
 */
export async function verifyImageSignature(
  untrustedSignature: Uint8Array,
  keys: readonly openpgp.PublicKey[],
  image: ImageReference,
  untrustedManifestBytes: Uint8Array,
  signedIdentity: SignedIdentity,
): Promise<AcceptedSignature> {
  const { signedData, fingerprint } = await verifySignedMessage(untrustedSignature, keys);
  let payload: SignaturePayload;
  try {
    payload = parseUntrustedPayload(signedData);
  } catch (e) {
    throw new SignatureRejected(`signed by ${fingerprint}, but ${(e as Error).message}`);
  }
  const actual = digestOf(Buffer.from(untrustedManifestBytes.buffer, untrustedManifestBytes.byteOffset, untrustedManifestBytes.byteLength), algorithmOf(payload.dockerManifestDigest));
  if (actual !== payload.dockerManifestDigest) {
    throw new SignatureRejected(`signed by ${fingerprint} for manifest ${payload.dockerManifestDigest}, but this image's manifest is ${actual}`);
  }
  const mismatch = identityMismatch(signedIdentity, image, payload.dockerReference);
  if (mismatch !== undefined) throw new SignatureRejected(`signed by ${fingerprint}, but it ${mismatch}`);
  return { fingerprint, payload };
}
