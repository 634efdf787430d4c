/**
 * Trust: may this image be used? berth's answer follows containers/image's
 * signature package: the policy (containers-policy.json(5)) names requirements
 * per scope, signatures come from a look-aside store (containers-registries.d(5))
 * or from the caller, and each is an OpenPGP-signed "simple signing" payload
 * (containers-signature(5)).
 *
 * The pull path calls checkTrust right after fetching the top-level manifest,
 * before parsing it further or fetching anything it names.
 */
import { BerthError } from '../errors.ts';
import { algorithmOf, digestOf } from '../image/digest.ts';
import { formatReference, pinnedDigest, transportOf } from '../transport/index.ts';
import type { ImageReference } from '../transport/reference.ts';
import type { TrustOptions } from './options.ts';
import { describeRequirement, describeScope, loadPolicy, requirementsFor } from './policy.ts';
import type { Reject, SignatureSet } from './signed-by.ts';

export interface TrustVerdict {
  accepted: true;
  /** Which requirements accepted the image, and from which scope of which file. */
  requirement: string;
  /** the signatures that were fetched (all of them, raw), to be stored with the image */
  signatures: Buffer[];
  /** Fingerprint of the key that verified the accepted signature, when one was needed. */
  verifiedBy?: string;
}

const REJECT_HINT = 'sign the image (berth sign) or change the policy (berth trust)';

/**
 * Throws BerthError 'UNTRUSTED' (exit 8) when the policy rejects (also
 * NO_POLICY / POLICY_INVALID, exit 8). `signatures`: when given (e.g. from
 * berth's own store or an archive), use them instead of the look-aside store.
 */
export async function checkTrust(
  ref: ImageReference,
  untrustedManifestBytes: Buffer,
  options: TrustOptions,
  signatures?: Buffer[],
): Promise<TrustVerdict> {
  const image = formatReference(ref);
  if (options.insecurePolicy === true) {
    return { accepted: true, requirement: 'none: the policy was not consulted (insecure policy)', signatures: signatures ?? [] };
  }
  if (transportOf(ref).trust === undefined) {
    throw new BerthError('INTERNAL', `checkTrust got the short name ${image}`, { hint: 'resolve short names to a registry before the trust check (this is a bug in berth)' });
  }
  const policy = await loadPolicy(options.policyPath);

  // A digest reference pins the bytes; check that before anything vouches for them.
  const pinned = pinnedDigest(ref);
  if (pinned !== undefined) {
    const actual = digestOf(untrustedManifestBytes, algorithmOf(pinned));
    if (actual !== pinned) {
      throw new BerthError('DIGEST_MISMATCH', `the manifest of ${image} has digest ${actual}`, {
        hint: 'the registry returned other bytes than the reference pins; nothing was pulled',
      });
    }
  }

  const match = requirementsFor(policy, ref);
  const where = `${describeScope(match)} in ${policy.path}`;
  const reject: Reject = (why, extra = {}) => new BerthError('UNTRUSTED', `${image} is rejected: ${why}`, { hint: REJECT_HINT, ...extra });

  // Requirements that reject without looking at signatures go first: no network for a certain "no".
  for (const r of match.requirements) {
    if (r.type === 'reject') throw reject(`${where} says reject`);
    if (r.type === 'unsupported') throw reject(`${where}: ${r.why}`);
  }

  let sigs: SignatureSet | undefined;
  let verifiedBy: string | undefined;
  for (const r of match.requirements) {
    if (r.type !== 'signedBy') continue;
    // Loaded only when signatures matter: OpenPGP and YAML cost ~90 ms to import.
    const { obtainSignatures, satisfySignedBy } = await import('./signed-by.ts');
    sigs ??= await obtainSignatures(ref, untrustedManifestBytes, options, signatures, reject);
    const fingerprint = await satisfySignedBy(r, sigs, ref, untrustedManifestBytes, (why, extra) => reject(`${where} requires ${describeRequirement(r)}, ${why}`, extra));
    verifiedBy ??= fingerprint;
  }

  const verdict: TrustVerdict = {
    accepted: true,
    requirement: `${where}: ${match.requirements.map(describeRequirement).join(' + ')}`,
    signatures: sigs === undefined ? (signatures ?? []) : sigs.items.flatMap((s) => (s.untrustedBytes === undefined ? [] : [s.untrustedBytes])),
  };
  if (verifiedBy !== undefined) verdict.verifiedBy = verifiedBy;
  return verdict;
}
