/**
 * The one way images get into the store, whatever the bytes come from (a
 * registry for pull, a bundle file for load, any ImageSource): the caller
 * has already checked trust and resolved manifest and config; here every
 * missing layer is streamed source -> compressed digest -> decompress ->
 * diff_id -> store, several at a time, and nothing is stored unverified.
 * Then the images are committed under a write-ahead intent
 * (deploy/intent.ts): image records, then references, so that a kill
 * anywhere is finished or undone by recoverImages() (docs/durability.md).
 */
import { crashPoint } from '../crashpoint.ts';
import { removeIntent, writeIntent, type ImagesIntent, type ImagesOp, type IntendedImage } from '../deploy/intent.ts';
import { BerthError } from '../errors.ts';
import { decompressor } from '../image/compression.ts';
import { parseDigest, shortDigest, VerifyingStream, verifiedStream, type Digest } from '../image/digest.ts';
import { layerCompression, type Descriptor } from '../image/manifest.ts';
import type { UntrustedSigstoreSignature } from '../image/sigstore.ts';
import type { ResolvedImage } from '../transport/resolve.ts';
import { forEachLimited } from '../store/fsutil.ts';
import type { Store } from '../store/store.ts';
import type { ImportLayerResult } from '../store/types.ts';
import type { ImageSource } from '../transport/types.ts';
import type { OpContext } from './context.ts';
import { formatBytes } from './format.ts';

/** An image past its trust check, with manifest and config verified: only its layers are left. */
export interface TrustedImage {
  /** The canonical reference it is stored under. */
  reference: string;
  /** Where its layer blobs come from. */
  source: ImageSource;
  resolved: ResolvedImage;
  signatures: Buffer[];
  /** Sigstore signatures the trust check was given (kept with the image, re-checked on use). */
  sigstoreSignatures?: UntrustedSigstoreSignature[];
  /** The signed top-level bytes, when they are not the manifest (an index). */
  signedManifestBytes?: Buffer;
}

export interface StoredCounts {
  /** Layers that were not in the store yet (a layer two images share counts for the first). */
  fetchedLayers: number;
  newBytes: number;
}

export const DEFAULT_CONCURRENCY = 3;
const PROGRESS_INTERVAL_MS = 200;
const VERB: Record<ImagesOp, { image: string; layer: string }> = { pull: { image: 'Pulling', layer: 'downloading' }, load: { image: 'Loading', layer: 'reading' } };

interface LayerJob {
  image: number;
  layer: Descriptor;
  diffId: Digest;
  /** For messages: "layer 2/3 abc123def456". */
  name: string;
}

/**
 * Store `images` (callers hold the state lock): their missing layers, then
 * their records and references. Counts per image, in order.
 */
export async function storeImages(ctx: OpContext, store: Store, op: ImagesOp, images: readonly TrustedImage[], concurrency = DEFAULT_CONCURRENCY): Promise<StoredCounts[]> {
  const counts = images.map(() => ({ fetchedLayers: 0, newBytes: 0 }));
  const jobs: LayerJob[] = [];
  const queued = new Set<string>();
  for (const [i, { resolved }] of images.entries()) {
    const { layers } = resolved.manifest;
    let stored = 0;
    for (const [index, layer] of layers.entries()) {
      const diffId = resolved.config.rootfs.diff_ids[index]!;
      if (queued.has(diffId) || (await store.hasLayer(diffId))) {
        stored++;
        continue;
      }
      queued.add(diffId);
      jobs.push({ image: i, layer, diffId, name: `  layer ${index + 1}/${layers.length} ${shortDigest(layer.digest)}` });
    }
    ctx.report.step(`${VERB[op].image} ${shortDigest(resolved.manifestDigest)}: ${layers.length} layer(s)${stored > 0 ? `, ${stored} already stored` : ''}`);
  }
  await forEachLimited(jobs, concurrency, async (job) => {
    const r = await importOne(ctx, store, images[job.image]!.source, job, VERB[op].layer);
    counts[job.image]!.fetchedLayers++;
    counts[job.image]!.newBytes += r.newBytes;
  });
  crashPoint('pipeline.layers-stored');
  await commitImages(ctx, store, op, images);
  return counts;
}

/** One layer through the verified pipeline, with a progress line while it streams. */
async function importOne(ctx: OpContext, store: Store, source: ImageSource, job: LayerJob, verb: string): Promise<ImportLayerResult> {
  const { layer, name } = job;
  const { progress } = ctx.report;
  const id = `layer ${layer.digest}`;
  const onBytes = progress && throttled((done) => progress.call(ctx.report, id, `${name} ${verb} ${done === 0 ? '' : `${formatBytes(done)} / `}${formatBytes(layer.size)}`, false, { done, total: layer.size }));
  const r = await importLayer(source, store, layer, job.diffId, onBytes);
  const summary = `${name} ${formatBytes(layer.size)}: ${r.entries} entries, ${formatBytes(r.newBytes)} new`;
  if (progress) progress.call(ctx.report, id, summary, true, { done: layer.size, total: layer.size });
  else ctx.report.step(summary);
  return r;
}

/** Compressed digest, then diff_id, on one stream into the store: it commits only if both match. */
async function importLayer(source: ImageSource, store: Store, layer: Descriptor, diffId: Digest, onBytes?: (done: number) => void): Promise<ImportLayerResult> {
  const what = `layer ${layer.digest} of ${source.description}`;
  onBytes?.(0);
  const compressed = verifiedStream(await source.getBlob(layer), layer.digest, layer.size, what);
  const decompress = decompressor(layerCompression(layer.mediaType));
  const uncompressed = new VerifyingStream(diffId, undefined, `uncompressed ${what} (diff_id)`);
  // `on`, not `once`: a stream may emit a second error while being destroyed, and an
  // unheard 'error' would crash berth instead of failing the operation.
  compressed.on('error', (e) => decompress.destroy(e));
  decompress.on('error', (e) => uncompressed.destroy(e instanceof BerthError ? e : new BerthError('LAYER_INVALID', `${what} does not decompress: ${e.message}`, { hint: 'the image is corrupt' })));
  // The store may wait for its own lock before it reads: an error before then is
  // reported through the store's rejection, not as an unhandled event.
  uncompressed.on('error', () => undefined);
  const tar = compressed.pipe(decompress).pipe(uncompressed);
  // Bytes read so far: the verifier counts them anyway. Listening after pipe() leaves the flow to it.
  if (onBytes) compressed.on('data', () => onBytes(compressed.bytes));
  return store.importLayer(diffId, tar);
}

/**
 * Every layer is in: the intent first (which records are new), then every
 * image record, then every reference. Records before references so that a
 * name never points at a missing image; all records before any reference so
 * that recovery can tell "complete" (finish the names) from "partial" (undo).
 */
async function commitImages(ctx: OpContext, store: Store, op: ImagesOp, images: readonly TrustedImage[]): Promise<void> {
  const intended: IntendedImage[] = [];
  for (const { reference, resolved } of images) {
    const created = (await store.getImage(resolved.manifestDigest).catch(() => undefined)) === undefined;
    intended.push({ reference, manifestDigest: resolved.manifestDigest, created });
  }
  const intent: ImagesIntent = { version: 1, kind: 'images', op, pid: process.pid, started: new Date().toISOString(), images: intended };
  await writeIntent(ctx.paths.root, intent);
  for (const { resolved, signatures, sigstoreSignatures, signedManifestBytes } of images) {
    await store.putImage({
      manifestDigest: resolved.manifestDigest,
      manifestBytes: resolved.manifestBytes,
      configBytes: resolved.configBytes,
      signatures,
      ...(sigstoreSignatures === undefined ? {} : { sigstoreSignatures }),
      ...(signedManifestBytes ? { signedManifestBytes } : {}),
    });
    crashPoint('pipeline.image-stored');
  }
  for (const { reference, resolved } of images) {
    await store.setReference(reference, resolved.manifestDigest);
    crashPoint('pipeline.reference-set');
  }
  await removeIntent(ctx.paths.root, intent);
}

/**
 * Put right what a dead pull or load left (recovery, under the state lock):
 * every image record there -> set every reference (forward); else remove the
 * records it created (back: references are only set once all records are in,
 * so none of its names was touched). Layers stay either way; prune's.
 */
export async function recoverImages(ctx: OpContext, store: Store, intent: ImagesIntent): Promise<string> {
  const what = `${intent.op} of ${intent.images.map((i) => i.reference).join(', ')} (pid ${intent.pid})`;
  const images = intent.images.map((i) => ({ ...i, digest: parseDigest(i.manifestDigest, 'intent manifest digest') }));
  const present = await Promise.all(images.map(async (i) => (await store.getImage(i.digest).catch(() => undefined)) !== undefined));
  let done: string;
  if (present.every(Boolean)) {
    for (const i of images) await store.setReference(i.reference, i.digest);
    done = `${what} completed: ${images.length === 1 ? 'reference' : 'references'} set`;
  } else {
    const removed = images.filter((i, n) => i.created && present[n]);
    for (const i of removed) await store.removeImage(i.digest);
    done = `${what} undone: ${removed.length === 0 ? 'no image record was written' : `removed ${removed.length} new image record(s)`}`;
  }
  await removeIntent(ctx.paths.root, intent);
  return done;
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
