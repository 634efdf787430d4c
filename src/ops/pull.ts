/**
 * Pulling an image into the store: the trust policy first (on the exact
 * top-level manifest bytes, before anything else is parsed or fetched), then
 * the platform manifest and config, then every missing layer, streamed
 * download -> digest -> decompress -> diff_id -> store, several at a time.
 * The image record and its reference are committed last: an interrupted pull
 * leaves nothing visible, and the next one reuses every complete layer.
 */
import { crashPoint } from '../crashpoint.ts';
import { removeIntent, writeIntent, type PullIntent } from '../deploy/intent.ts';
import { BerthError } from '../errors.ts';
import { decompressor } from '../image/compression.ts';
import { shortDigest, VerifyingStream, verifiedStream, type Digest } from '../image/digest.ts';
import { layerCompression, type Descriptor, type Platform } from '../image/manifest.ts';
import { formatReference, type ImageReference } from '../image/reference.ts';
import { resolveImage, type ResolvedImage } from '../image/resolve.ts';
import type { Store } from '../store/store.ts';
import { checkTrust, type TrustOptions } from '../trust/index.ts';
import { openImageSource } from '../transport/index.ts';
import type { ImageSource, SourceOptions } from '../transport/types.ts';
import type { OpContext } from './context.ts';

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

const DEFAULT_CONCURRENCY = 3;
const PROGRESS_INTERVAL_MS = 200;

/** Pull `ref` into `store`. Callers hold the state lock. */
export async function pullImage(ctx: OpContext, store: Store, ref: ImageReference, options: PullOptions): Promise<PullResult> {
  const source = await openImageSource(ref, options.source);
  try {
    ctx.report.step(`Resolving ${source.description}`);
    const top = await source.getManifest();
    // A short name resolves to the registry that has it: trust and record that one.
    const resolvedRef = source.reference;
    const verdict = await checkTrust(resolvedRef, top.untrustedBytes, options.trust);
    const image = await resolveImage(source, { ...(options.platform ? { platform: options.platform } : {}), top });
    const { layers } = image.manifest;
    const missing: { layer: Descriptor; diffId: Digest; index: number }[] = [];
    for (const [index, layer] of layers.entries()) {
      const diffId = image.config.rootfs.diff_ids[index]!;
      if (!(await store.hasLayer(diffId))) missing.push({ layer, diffId, index });
    }
    ctx.report.step(
      `Pulling ${shortDigest(image.manifestDigest)}: ${layers.length} layer(s)${missing.length < layers.length ? `, ${layers.length - missing.length} already stored` : ''}`,
    );
    let newBytes = 0;
    await forEachLimited(missing, options.concurrency ?? DEFAULT_CONCURRENCY, async ({ layer, diffId, index }) => {
      const name = `  layer ${index + 1}/${layers.length} ${shortDigest(layer.digest)}`;
      const { progress } = ctx.report;
      const onBytes =
        progress &&
        throttled((done) => progress.call(ctx.report, `layer ${index}`, `${name} downloading ${done === 0 ? '' : `${formatBytes(done)} / `}${formatBytes(layer.size)}`, false, { done, total: layer.size }));
      const r = await importLayer(source, store, layer, diffId, onBytes);
      newBytes += r.newBytes;
      const summary = `${name} ${formatBytes(layer.size)}: ${r.entries} entries, ${formatBytes(r.newBytes)} new`;
      if (progress) progress.call(ctx.report, `layer ${index}`, summary, true, { done: layer.size, total: layer.size });
      else ctx.report.step(summary);
    });
    crashPoint('pull.layers-stored');
    const reference = formatReference(resolvedRef);
    // Between the image record and its reference a kill would leave an image no name points at: recovery adds the name.
    const intent: PullIntent = { version: 1, kind: 'pull', pid: process.pid, started: new Date().toISOString(), reference, manifestDigest: image.manifestDigest };
    await writeIntent(ctx.paths.root, intent);
    await store.putImage({
      manifestDigest: image.manifestDigest,
      manifestBytes: image.manifestBytes,
      configBytes: image.configBytes,
      signatures: verdict.signatures,
      // Signatures sign the top-level manifest (an index, when there is one): keep its bytes to re-check them later.
      ...(top.untrustedBytes.equals(image.manifestBytes) ? {} : { signedManifestBytes: top.untrustedBytes }),
    });
    crashPoint('pull.image-stored');
    await store.setReference(reference, image.manifestDigest);
    await removeIntent(ctx.paths.root, intent);
    return { reference, referenceObject: resolvedRef, manifestDigest: image.manifestDigest, image, layers: layers.length, fetchedLayers: missing.length, newBytes };
  } finally {
    await source.close();
  }
}

async function importLayer(source: ImageSource, store: Store, layer: Descriptor, diffId: Digest, onBytes?: (done: number) => void) {
  const what = `layer ${layer.digest} of ${source.description}`;
  onBytes?.(0);
  const compressed = verifiedStream(await source.getBlob(layer), layer.digest, layer.size, what);
  const decompress = decompressor(layerCompression(layer.mediaType));
  const uncompressed = new VerifyingStream(diffId, undefined, `uncompressed ${what} (diff_id)`);
  // `on`, not `once`: a stream may emit a second error while being destroyed, and an
  // unheard 'error' would crash berth instead of failing the pull.
  compressed.on('error', (e) => decompress.destroy(e));
  decompress.on('error', (e) => uncompressed.destroy(e instanceof BerthError ? e : new BerthError('LAYER_INVALID', `${what} does not decompress: ${e.message}`, { hint: 'the image is corrupt' })));
  // The store may wait for its own lock before it reads: an error before then is
  // reported through importLayer's rejection, not as an unhandled event.
  uncompressed.on('error', () => undefined);
  const tar = compressed.pipe(decompress).pipe(uncompressed);
  // Bytes downloaded so far: the verifier counts them anyway. Listening after pipe() leaves the flow to it.
  if (onBytes) compressed.on('data', () => onBytes(compressed.bytes));
  return store.importLayer(diffId, tar);
}

/** `fn` at most every PROGRESS_INTERVAL_MS (the first call always runs): a terminal needs no more. */
function throttled(fn: (n: number) => void): (n: number) => void {
  let last = 0;
  return (n) => {
    const now = Date.now();
    if (last !== 0 && now - last < PROGRESS_INTERVAL_MS) return;
    last = now;
    fn(n);
  };
}

/** Run `fn` over `items` with at most `limit` in flight; the first failure stops new starts and is thrown. */
async function forEachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed: unknown;
  const worker = async () => {
    while (failed === undefined && next < items.length) {
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (e) {
        failed ??= e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failed !== undefined) throw failed;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}
