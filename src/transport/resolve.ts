/**
 * From a reference to a verified manifest and config: follows an index to the
 * host's platform, checks every digest it can know, and caps every read.
 */
import { BerthError } from '../errors.ts';
import { algorithmOf, digestOf, verifiedStream, type Digest } from '../image/digest.ts';
import {
  hostPlatform, MAX_CONFIG_BYTES, parseImageConfig, parseManifest, selectPlatform,
  type Descriptor, type ImageConfig, type ImageManifest, type Platform,
} from '../image/manifest.ts';
import { pinnedDigest } from './index.ts';
import type { BlobDescriptor, ImageSource, UntrustedManifest } from './types.ts';

export interface ResolvedImage {
  /** Digest of the image manifest (not of an index that pointed to it). */
  manifestDigest: Digest;
  manifestBytes: Buffer;
  manifest: ImageManifest;
  configBytes: Buffer;
  config: ImageConfig;
}

export interface ResolveOptions {
  /** The platform to pick from an index; default the source's (SourceOptions.platform), else this host's. */
  platform?: Platform;
  /** The top-level manifest, when the caller fetched it already (e.g. for the trust policy). */
  top?: UntrustedManifest;
}

export async function resolveImage(source: ImageSource, options: ResolveOptions | Platform = {}): Promise<ResolvedImage> {
  const o: ResolveOptions = 'os' in options ? { platform: options } : options;
  const platform = o.platform ?? source.platform ?? hostPlatform();
  const pinned = pinnedDigest(source.reference);
  let fetched = o.top ?? (await source.getManifest());
  let digest = checkManifestDigest(fetched.untrustedBytes, pinned ?? fetched.claimedDigest, source.description);
  let parsed = parseManifest(fetched.untrustedBytes, fetched.mediaType, `manifest of ${source.description}`);
  if (parsed.kind === 'index') {
    const child = selectPlatform(parsed, platform, source.description);
    fetched = await source.getManifest(child.digest);
    digest = checkManifestDigest(fetched.untrustedBytes, child.digest, source.description);
    if (fetched.untrustedBytes.length !== child.size) {
      throw new BerthError('DIGEST_MISMATCH', `manifest ${child.digest} of ${source.description} has ${fetched.untrustedBytes.length} bytes, its index says ${child.size}`, { hint: 'the image is corrupt' });
    }
    parsed = parseManifest(fetched.untrustedBytes, child.mediaType, `manifest ${child.digest} of ${source.description}`);
    if (parsed.kind === 'index') {
      throw new BerthError('MANIFEST_INVALID', `index of ${source.description} points to another index`, { hint: 'nested indexes are not supported' });
    }
  }
  attachUrls(parsed, fetched.untrustedBytes);
  const configBytes = await readBlobCapped(source, parsed.config, MAX_CONFIG_BYTES, `config of ${source.description}`);
  const config = parseImageConfig(configBytes, `config of ${source.description}`);
  if (config.rootfs.diff_ids.length !== parsed.layers.length) {
    throw new BerthError('MANIFEST_INVALID', `${source.description} has ${parsed.layers.length} layers but its config lists ${config.rootfs.diff_ids.length} diff_ids`, { hint: 'the image is malformed' });
  }
  if (config.os !== platform.os || config.architecture !== platform.architecture) {
    throw new BerthError('IMAGE_NOT_FOUND', `${source.description} is for ${config.os}/${config.architecture}, this host is ${platform.os}/${platform.architecture}`, {
      hint: 'use an image built for this host',
    });
  }
  return { manifestDigest: digest, manifestBytes: fetched.untrustedBytes, manifest: parsed, configBytes, config };
}

/** The manifest's digest, computed from its bytes; must equal `expected` when one is known. */
function checkManifestDigest(bytes: Buffer, expected: Digest | undefined, what: string): Digest {
  const actual = digestOf(bytes, expected ? algorithmOf(expected) : 'sha256');
  if (expected !== undefined && actual !== expected) {
    throw new BerthError('DIGEST_MISMATCH', `manifest of ${what} has digest ${actual}, expected ${expected}`, {
      hint: 'the registry or medium returned corrupt or tampered data; nothing was installed',
    });
  }
  return actual;
}

async function readBlobCapped(source: ImageSource, d: Descriptor, cap: number, what: string): Promise<Buffer> {
  if (d.size > cap) throw new BerthError('MANIFEST_INVALID', `${what} is ${d.size} bytes, the limit is ${cap}`, { hint: 'the image is malformed or hostile' });
  const stream = verifiedStream(await source.getBlob(d), d.digest, d.size, what);
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/**
 * Layer descriptors keep their `urls` (non-distributable layers may live
 * only there); parseManifest does not carry them. The manifest's digest was
 * checked before this runs; the URLs are still only places to try, since
 * every blob is verified against its digest.
 */
function attachUrls(manifest: ImageManifest, bytes: Buffer): void {
  let layers: unknown;
  try {
    layers = (JSON.parse(bytes.toString('utf8')) as { layers?: unknown }).layers;
  } catch {
    return;
  }
  if (!Array.isArray(layers)) return;
  manifest.layers.forEach((layer, i) => {
    const urls = (layers[i] as { urls?: unknown } | undefined)?.urls;
    if (Array.isArray(urls) && urls.length > 0 && urls.length <= 16 && urls.every((u) => typeof u === 'string' && /^https?:\/\//.test(u))) {
      (layer as BlobDescriptor).urls = urls as string[];
    }
  });
}
