/**
 * The signedBy requirement: getting an image's signatures (from the caller or
 * its look-aside store) and finding one that a requirement's keys accept.
 */
import { BerthError } from '../errors.ts';
import { digestOf, type Digest } from '../image/digest.ts';
import type { ImageReference } from '../transport/reference.ts';
import { loadKeys } from './keys.ts';
import { MAX_SIGNATURE_BYTES, MAX_SIGNATURES } from './limits.ts';
import { fetchSignatures, StoreUnavailable, type FetchedSignature } from './lookaside.ts';
import type { TrustOptions } from './options.ts';
import type { SignedByRequirement } from './policy.ts';
import { loadRegistriesConfig, lookasideBase } from './registries-d.ts';
import { SignatureRejected, verifyImageSignature } from './verify.ts';

/** Makes the rejection error for one reason. */
export type Reject = (why: string, extra?: { details?: string[]; hint?: string; cause?: unknown }) => BerthError;

export interface SignatureSet {
  readonly items: readonly FetchedSignature[];
  /** Where they were looked for, for messages. */
  readonly where: string;
}

/** The signatures to judge: the caller's, else the look-aside store's (failing closed). */
export async function obtainSignatures(
  ref: ImageReference,
  untrustedManifestBytes: Buffer,
  options: TrustOptions,
  given: Buffer[] | undefined,
  reject: Reject,
): Promise<SignatureSet> {
  if (given !== undefined) {
    const items = given.slice(0, MAX_SIGNATURES).map((b, i) => ({
      label: `signature #${i + 1}`,
      location: 'given',
      untrustedBytes: b.length > MAX_SIGNATURE_BYTES ? undefined : b,
    }));
    return { items, where: 'the signatures stored with the image' };
  }
  if (ref.transport !== 'docker') {
    return { items: [], where: `nothing: the ${ref.transport}: transport has no signature store (signatures must come with the image)` };
  }
  const digest: Digest = ref.digest ?? digestOf(untrustedManifestBytes);
  let base;
  try {
    base = lookasideBase(await loadRegistriesConfig(options.registriesDir), ref, false);
  } catch (e) {
    throw reject(`its signatures cannot be looked up: ${(e as Error).message}`, { cause: e });
  }
  try {
    const items = await fetchSignatures(base.url, ref, digest);
    return { items, where: `${base.url} (${base.from})` };
  } catch (e) {
    if (!(e instanceof StoreUnavailable || e instanceof BerthError)) throw e;
    // Fail closed: an unreachable store is not an empty one.
    throw reject(`its signatures cannot be read from ${base.url} (${base.from}): ${e.message}`, {
      hint: 'the signature store must be reachable to verify the image',
      cause: e,
    });
  }
}

/** Returns the fingerprint of the key of the first acceptable signature; throws what `fail` makes. */
export async function satisfySignedBy(
  r: SignedByRequirement,
  sigs: SignatureSet,
  ref: ImageReference,
  untrustedManifestBytes: Buffer,
  fail: Reject,
): Promise<string> {
  if (sigs.items.length === 0) throw fail('and the image has no signatures', { details: [`looked in ${sigs.where}`] });
  let keys;
  try {
    keys = await loadKeys(r.keys);
  } catch (e) {
    throw fail(`and its keys cannot be used: ${(e as Error).message}`, { cause: e });
  }
  const details = [`looked in ${sigs.where}`];
  for (const s of sigs.items) {
    if (s.untrustedBytes === undefined) {
      details.push(`${s.label}: larger than ${MAX_SIGNATURE_BYTES} bytes, not read`);
      continue;
    }
    try {
      const accepted = await verifyImageSignature(s.untrustedBytes, keys, ref, untrustedManifestBytes, r.signedIdentity);
      return accepted.fingerprint;
    } catch (e) {
      if (!(e instanceof SignatureRejected)) throw e;
      details.push(`${s.label}: ${e.message}`);
    }
  }
  const n = sigs.items.length;
  throw fail(`and none of its ${n} signature${n === 1 ? '' : 's'} is acceptable`, { details });
}
