/**
 * Pulling an image into the store: the trust policy first (on the exact
 * top-level manifest bytes, before anything else is parsed or fetched), then
 * the platform manifest and config, then the layer pipeline
 * (layer-pipeline.ts: every missing layer streamed and verified into the
 * store, then the image record and its reference under an intent). An
 * interrupted pull leaves nothing visible, and the next one reuses every
 * complete layer.
 */
import type { Digest } from '../image/digest.ts';
import type { Platform } from '../image/manifest.ts';
import { formatReference } from '../transport/index.ts';
import type { ImageReference } from '../transport/reference.ts';
import { resolveImage, type ResolvedImage } from '../transport/resolve.ts';
import type { Store } from '../store/store.ts';
import { checkTrust } from '../trust/index.ts';
import type { TrustOptions } from '../trust/options.ts';
import { registrySigstoreSource } from '../trust/sigstore-source.ts';
import { openImageSource } from '../transport/index.ts';
import type { SourceOptions } from '../transport/types.ts';
import type { OpContext } from './context.ts';
import { storeImages } from './layer-pipeline.ts';

export interface PullOptions {
  source: SourceOptions;
  trust: TrustOptions;
  platform?: Platform;
  /** Layers downloaded at once. */
  concurrency?: number;
}

export interface PullResult {
  /** Canonical form of the reference the image was pulled by (short names resolved). */
  reference: string;
  referenceObject: ImageReference;
  manifestDigest: Digest;
  image: ResolvedImage;
  layers: number;
  /** Layers that were not in the store yet. */
  fetchedLayers: number;
  newBytes: number;
}

/** Pull `ref` into `store`. Callers hold the state lock. */
export async function pullImage(ctx: OpContext, store: Store, ref: ImageReference, options: PullOptions): Promise<PullResult> {
  const source = await openImageSource(ref, options.source);
  try {
    ctx.report.step(`Resolving ${source.description}`);
    const top = await source.getManifest();
    // A short name resolves to the registry that has it: trust and record that one.
    const resolvedRef = source.reference;
    const verdict = await checkTrust(resolvedRef, top.untrustedBytes, options.trust, undefined, registrySigstoreSource(resolvedRef, source, options.trust));
    const image = await resolveImage(source, { ...(options.platform ? { platform: options.platform } : {}), top });
    const reference = formatReference(resolvedRef);
    const [counts] = await storeImages(
      ctx,
      store,
      'pull',
      [
        {
          reference,
          source,
          resolved: image,
          signatures: verdict.signatures,
          sigstoreSignatures: verdict.sigstoreSignatures,
          // Signatures sign the top-level manifest (an index, when there is one): keep its bytes to re-check them later.
          ...(top.untrustedBytes.equals(image.manifestBytes) ? {} : { signedManifestBytes: top.untrustedBytes }),
        },
      ],
      options.concurrency,
    );
    return { reference, referenceObject: resolvedRef, manifestDigest: image.manifestDigest, image, layers: image.manifest.layers.length, ...counts! };
  } finally {
    await source.close();
  }
}
