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
import type { SigstoreSignatureSource, UntrustedSigstoreSignature } from '../image/sigstore.ts';
import { formatReference, pinnedDigest, transportOf } from '../transport/index.ts';
import type { ImageReference } from '../transport/reference.ts';
import type { TrustOptions } from './options.ts';
import { DEFAULT_POLICY_PATH, describeRequirement, describeScope, loadPolicy, requirementsFor } from './policy.ts';
import type { Reject, SignatureSet } from './signed-by.ts';

export interface TrustVerdict {
  accepted: true;
  /** Which requirements accepted the image, and from which scope of which file. */
  requirement: string;
  /** the signatures that were fetched (all of them, raw), to be stored with the image */
  signatures: Buffer[];
  /**
   * the sigstore signatures the source returned (all of them, untrusted, as
   * received), to be stored with the image; empty when no sigstoreSigned
   * requirement applied (the source was not asked)
   */
  sigstoreSignatures: UntrustedSigstoreSignature[];
  /** Fingerprint of the key that verified the accepted signature, when one was needed (the first signedBy requirement's). */
  verifiedBy?: string;
  /** Who signed the accepted sigstore signature (a key's SHA256 fingerprint, or a certificate's identity and issuer). */
  sigstoreSigner?: string;
}

const REJECT_HINT = 'sign the image (berth sign) or change the policy (berth trust)';

/**
 * Throws BerthError 'UNTRUSTED' (exit 8) when the policy rejects (also
 * NO_POLICY / POLICY_INVALID, exit 8). `signatures`: when given (e.g. from
 * berth's own store or an archive), use them instead of the look-aside store.
 * `sigstore`: where the image's sigstore signatures come from; asked (once)
 * only when a sigstoreSigned requirement applies; without it such a
 * requirement finds no signatures and rejects.
 */
export async function checkTrust(
  ref: ImageReference,
  untrustedManifestBytes: Buffer,
  options: TrustOptions,
  signatures?: Buffer[],
  sigstore?: SigstoreSignatureSource,
): Promise<TrustVerdict> {
  const image = formatReference(ref);
  if (options.insecurePolicy === true) {
    return { accepted: true, requirement: 'none: the policy was not consulted (insecure policy)', signatures: signatures ?? [], sigstoreSignatures: [] };
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

  let sigstoreSigs: UntrustedSigstoreSignature[] | undefined;
  let sigstoreSigner: string | undefined;
  for (const r of match.requirements) {
    if (r.type !== 'sigstoreSigned') continue;
    // Loaded only when needed, like signed-by.ts: X.509 and the bundle code are not on the common path.
    const [{ satisfySigstoreSigned }, { loadScopeExtras }] = await Promise.all([import('./sigstore/requirement.ts'), import('./sigstore/side-file.ts')]);
    if (sigstoreSigs === undefined) {
      const digest = pinned ?? digestOf(untrustedManifestBytes);
      try {
        sigstoreSigs = sigstore === undefined ? [] : await sigstore(digest);
      } catch (e) {
        // Fail closed: a source that cannot be read is not an empty one.
        throw reject(`${where} requires ${describeRequirement(r)}, and its sigstore signatures cannot be read: ${(e as Error).message}`, { cause: e });
      }
    }
    const extras = await loadScopeExtras(options.policyPath ?? DEFAULT_POLICY_PATH, match.transport, match.scope);
    const signer = await satisfySigstoreSigned(r, sigstoreSigs, ref, untrustedManifestBytes, extras, (why, extra) => reject(`${where} requires ${describeRequirement(r)}, ${why}`, extra));
    sigstoreSigner ??= signer;
  }

  const verdict: TrustVerdict = {
    accepted: true,
    requirement: `${where}: ${match.requirements.map(describeRequirement).join(' + ')}`,
    signatures: sigs === undefined ? (signatures ?? []) : sigs.items.flatMap((s) => (s.untrustedBytes === undefined ? [] : [s.untrustedBytes])),
    sigstoreSignatures: sigstoreSigs ?? [],
  };
  if (verifiedBy !== undefined) verdict.verifiedBy = verifiedBy;
  if (sigstoreSigner !== undefined) verdict.sigstoreSigner = sigstoreSigner;
  return verdict;
}
