/**
 * The sigstoreSigned requirement: one of the image's sigstore signatures
 * (cosign attachments, Sigstore bundles) must be accepted. Loaded lazily by
 * checkTrust, only when such a requirement applies.
 */
import type { UntrustedSigstoreSignature } from '../../image/sigstore.ts';
import type { ImageReference } from '../../transport/reference.ts';
import type { SigstoreSignedRequirement } from '../policy.ts';
import type { Reject } from '../signed-by.ts';
import { verifyAttachment, type SigstoreCheck } from './attachment.ts';
import { SigstoreRejected } from './encoding.ts';
import { loadMaterial } from './material.ts';
import type { ScopeExtras } from './side-file.ts';

/** At most this many sigstore signatures are judged per image (as MAX_SIGNATURES for signedBy). */
export const MAX_SIGSTORE_SIGNATURES = 32;

/** Returns who signed the first acceptable signature; throws what `fail` makes, one line naming the reason. */
export async function satisfySigstoreSigned(
  r: SigstoreSignedRequirement,
  sigs: readonly UntrustedSigstoreSignature[],
  image: ImageReference,
  untrustedManifestBytes: Buffer,
  extras: ScopeExtras,
  fail: Reject,
): Promise<string> {
  if (sigs.length === 0) throw fail('and the image has no sigstore signatures');
  let material;
  try {
    material = await loadMaterial(r);
  } catch (e) {
    if (!(e instanceof SigstoreRejected)) throw e;
    throw fail(`and its trust material cannot be used: ${e.message}`, { cause: e });
  }
  const check: SigstoreCheck = { requirement: r, material, subjectURIs: extras.subjectURIs, image, manifestBytes: untrustedManifestBytes, now: Date.now() };
  const reasons: string[] = [];
  for (const [i, s] of sigs.slice(0, MAX_SIGSTORE_SIGNATURES).entries()) {
    const label = `${s.kind === 'cosign' ? 'cosign signature' : 'sigstore bundle'} #${i + 1}`;
    try {
      if (s.kind === 'cosign') return verifyAttachment(check, s);
      const { verifyBundle } = await import('./bundle.ts');
      return await verifyBundle(check, s, extras);
    } catch (e) {
      if (!(e instanceof SigstoreRejected)) throw e;
      reasons.push(`${label}: ${e.message}`);
    }
  }
  if (sigs.length > MAX_SIGSTORE_SIGNATURES) reasons.push(`${sigs.length - MAX_SIGSTORE_SIGNATURES} more signatures were not read (at most ${MAX_SIGSTORE_SIGNATURES})`);
  if (reasons.length === 1) throw fail(`but ${reasons[0]}`);
  throw fail(`and none of its ${sigs.length} sigstore signatures is acceptable`, { details: reasons });
}
