/**
 * Unpacking an image into a directory, streamed end to end:
 * download -> digest check -> decompress -> diff_id check -> secure extract.
 * Nothing is buffered whole. The target is a staging directory that the
 * caller discards on any error, so a digest failure found at the end of a
 * layer leaves nothing behind.
 */
import type { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { BerthError } from '../errors.ts';
import { VerifyingStream, verifiedStream } from '../image/digest.ts';
import { layerCompression, type Descriptor } from '../image/manifest.ts';
import type { ResolvedImage } from '../image/resolve.ts';
import type { ImageSource } from '../transport/types.ts';
import { applyLayer } from './layer-apply.ts';

export interface UnpackProgress {
  (event: { layer: number; layers: number; digest: string; size: number }): void;
}

export async function unpackImage(source: ImageSource, image: ResolvedImage, rootfs: string, progress?: UnpackProgress): Promise<void> {
  const { layers } = image.manifest;
  for (const [i, layer] of layers.entries()) {
    progress?.({ layer: i + 1, layers: layers.length, digest: layer.digest, size: layer.size });
    await unpackLayer(source, layer, image.config.rootfs.diff_ids[i]!, rootfs);
  }
}

async function unpackLayer(source: ImageSource, layer: Descriptor, diffId: VerifyingStream['expected'], rootfs: string): Promise<void> {
  const compression = layerCompression(layer.mediaType);
  const what = `layer ${layer.digest} of ${source.description}`;
  const compressed = verifiedStream(await source.getBlob(layer), layer.digest, layer.size, what);
  let tar: Readable = compressed;
  if (compression === 'gzip') {
    const gunzip = createGunzip();
    compressed.once('error', (e) => gunzip.destroy(e));
    tar = compressed.pipe(gunzip);
  } else if (compression === 'zstd') {
    compressed.destroy();
    throw new BerthError('MANIFEST_INVALID', `${what} is zstd-compressed, which this version cannot unpack yet`, { hint: 'use a gzip-compressed image' });
  }
  const uncompressed = new VerifyingStream(diffId, undefined, `uncompressed ${what} (diff_id)`);
  tar.once('error', (e) => uncompressed.destroy(wrapDecompressError(e, what)));
  const verified = finished(tar.pipe(uncompressed));
  verified.catch(() => {}); // reported through applyLayer or awaited below
  await applyLayer(rootfs, uncompressed);
  // The tar may end (end-of-archive marker) before the stream does: drain the
  // rest so the digests cover every byte before the layer counts as good.
  uncompressed.resume();
  await verified;
}

function wrapDecompressError(e: Error, what: string): Error {
  if (e instanceof BerthError) return e;
  return new BerthError('LAYER_INVALID', `${what} does not decompress: ${e.message}`, { hint: 'the image is corrupt' });
}
