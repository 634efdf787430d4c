/**
 * Getting an image for a deployment: from the store when it already holds
 * the reference (its stored signatures re-checked against today's policy),
 * else pulled. Local media (layouts, archives) are always read again: the
 * same name may hold new content, and reading them costs no network.
 */
import { BerthError } from '../errors.ts';
import { formatReference, type ImageReference } from '../image/reference.ts';
import type { Store } from '../store/store.ts';
import type { StoredImage } from '../store/types.ts';
import { checkTrust } from '../trust/index.ts';
import type { OpContext } from './context.ts';
import { pullImage, type PullOptions } from './pull.ts';

/** always: pull every time; missing: use the store when it has the reference; never: store only. */
export type PullPolicy = 'always' | 'missing' | 'never';

export async function obtainImage(
  ctx: OpContext,
  store: Store,
  ref: ImageReference,
  options: PullOptions,
  policy: PullPolicy = 'missing',
): Promise<{ image: StoredImage; reference: ImageReference }> {
  const remote = ref.transport === 'docker';
  if (policy === 'never' || (policy === 'missing' && remote)) {
    const digest = await store.resolveReference(formatReference(ref));
    const stored = digest === undefined ? undefined : await store.getImage(digest);
    if (stored) {
      ctx.report.step(`Using ${formatReference(ref)} from the store (${stored.manifestDigest})`);
      await checkTrust(ref, stored.signedManifestBytes ?? stored.manifestBytes, options.trust, stored.signatures);
      return { image: stored, reference: ref };
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
