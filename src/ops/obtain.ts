/**
 * Getting an image for a deployment: from the store when it already holds
 * the reference (its stored signatures, sigstore ones too, re-checked against today's policy),
 * else pulled. Local media (layouts, archives) are always read again: the
 * same name may hold new content, and reading them costs no network.
 */
import { BerthError } from '../errors.ts';
import { algorithmOf, digestOf } from '../image/digest.ts';
import { formatReference, pinnedDigest } from '../transport/index.ts';
import type { ImageReference } from '../transport/reference.ts';
import type { Store } from '../store/store.ts';
import type { StoredImage } from '../store/types.ts';
import { checkTrust } from '../trust/index.ts';
import { keptSigstoreSource } from '../trust/sigstore-source.ts';
import type { OpContext } from './context.ts';
import { pullImage, type PullOptions } from './pull.ts';
import { obtainFromShare, shareConfig, type FromShare } from './share-source.ts';

/** always: pull every time; missing: use the store when it has the reference; never: store only. */
export type PullPolicy = 'always' | 'missing' | 'never';

export async function obtainImage(
  ctx: OpContext,
  store: Store,
  ref: ImageReference,
  options: PullOptions,
  policy: PullPolicy = 'missing',
  /** Consult the host's shared store (berth.conf shared-store=) first; save needs the layers, so it does not. */
  useShare = true,
): Promise<{ image: StoredImage; reference: ImageReference; shared?: FromShare['shared'] }> {
  const remote = ref.transport === 'docker';
  const share = useShare && remote ? shareConfig() : undefined;
  if (share !== undefined && ref.transport === 'docker') {
    const fromShare = await obtainFromShare(ctx, share, ref, options);
    if (fromShare !== undefined) return { image: fromShare.image, reference: ref, shared: fromShare.shared };
  }
  if (policy === 'never' || (policy === 'missing' && remote)) {
    const digest = await store.resolveReference(formatReference(ref));
    const stored = digest === undefined ? undefined : await store.getImage(digest);
    const candidates = stored === undefined ? [] : signedBytesFor(ref, stored);
    if (stored && candidates.length > 0) {
      ctx.report.step(`Using ${formatReference(ref)} from the store (${stored.manifestDigest})`);
      await recheckTrust(ref, candidates, stored, options);
      return { image: stored, reference: ref };
    }
    if (stored && policy === 'never') {
      throw new BerthError('UNTRUSTED', `the store cannot vouch for ${formatReference(ref)}: it no longer holds the manifest that reference names`, {
        hint: 'pull it again (drop --pull=never)',
      });
    }
    if (policy === 'never') {
      throw new BerthError('IMAGE_NOT_FOUND', `image ${formatReference(ref)} is not in the store`, { hint: 'pull it first (berth pull), or drop --pull=never' });
    }
  }
  const pulled = await pullImage(ctx, store, ref, options);
  const image = await store.getImage(pulled.manifestDigest);
  if (!image) throw new BerthError('INTERNAL', `image ${pulled.manifestDigest} vanished from the store after pulling`, { hint: 'this is a bug in berth' });
  return { image, reference: pulled.referenceObject };
}

/**
 * The manifest bytes the stored signatures may sign, for `ref`: the
 * top-level manifest the image was last pulled through (an index), and the
 * image manifest itself (a pull by its own digest, or a tag naming it
 * directly, signs that). A reference that pins a digest allows only the
 * bytes with that digest; none, when the store kept another index since.
 */
function signedBytesFor(ref: ImageReference, stored: StoredImage): Buffer[] {
  const all = stored.signedManifestBytes === undefined ? [stored.manifestBytes] : [stored.signedManifestBytes, stored.manifestBytes];
  const pinned = pinnedDigest(ref);
  return pinned === undefined ? all : all.filter((b) => digestOf(b, algorithmOf(pinned)) === pinned);
}

/** Today's policy on the stored signatures: accepted if it accepts them on any candidate; else the first refusal. */
async function recheckTrust(ref: ImageReference, candidates: Buffer[], stored: StoredImage, options: PullOptions): Promise<void> {
  let refusal: unknown;
  for (const bytes of candidates) {
    try {
      // The sigstore signatures kept with the image, never the registry's: installing from the store needs no network.
      await checkTrust(ref, bytes, options.trust, stored.signatures, keptSigstoreSource(stored.sigstoreSignatures));
      return;
    } catch (e) {
      refusal ??= e;
    }
  }
  throw refusal;
}
