/**
 * Reading an image from docker-archive:FILE[:NAME:TAG|:@N], the `docker save`
 * format: manifest.json lists, per image, its Config file, RepoTags and
 * Layers files. The archive has no registry manifest, so one is synthesised
 * (Docker schema 2) from the real digests and sizes of the config and layer
 * files, computed by reading them once; callers then verify every blob
 * against it as for any other source. Nothing is extracted.
 */
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { BerthError } from '../../errors.ts';
import { digestOf, type Digest } from '../../image/digest.ts';
import { MAX_CONFIG_BYTES, MAX_MANIFEST_BYTES, MediaType, parseJson, type Platform } from '../../image/manifest.ts';
import { dockerName, parseDockerReference } from '../../image/reference.ts';
import { archivePath, TarIndex, type TarEntry } from '../tarfile/tar_index.ts';
import type { BlobDescriptor, BlobOptions, ImageSource, UntrustedManifest } from '../types.ts';
import { formatDockerArchiveReference, type DockerArchiveReference } from './reference.ts';

/** Docker's own type for uncompressed layers (distribution's schema2.MediaTypeUncompressedLayer). */
export const DOCKER_LAYER_TAR = 'application/vnd.docker.image.rootfs.diff.tar';

const MAX_IMAGES = 1000;
const MAX_LAYERS = 1000;

export interface ArchiveImage {
  config: string;
  repoTags: string[];
  layers: string[];
}

function malformed(file: string, why: string): BerthError {
  return new BerthError('MANIFEST_INVALID', `manifest.json of ${file} is invalid: ${why}`, { hint: 'the archive is malformed; create it again (docker save, skopeo copy)' });
}

/** Parse manifest.json; every path it names must stay inside the archive. */
export function parseArchiveManifest(bytes: Buffer, file: string): ArchiveImage[] {
  let doc: unknown;
  try {
    doc = JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    throw malformed(file, `not JSON (${(e as Error).message})`);
  }
  if (!Array.isArray(doc)) throw malformed(file, 'not a list');
  if (doc.length === 0) throw malformed(file, 'it lists no images');
  if (doc.length > MAX_IMAGES) throw malformed(file, `${doc.length} images, the limit is ${MAX_IMAGES}`);
  return doc.map((item: unknown, i) => {
    if (typeof item !== 'object' || item === null || Array.isArray(item)) throw malformed(file, `entry ${i} is not an object`);
    const o = item as Record<string, unknown>;
    const config = archivePath(o['Config'], `Config of image ${i}`, file);
    const tags = o['RepoTags'] ?? [];
    if (!Array.isArray(tags) || tags.some((t) => typeof t !== 'string')) throw malformed(file, `RepoTags of image ${i} is not a list of strings`);
    const layers = o['Layers'];
    if (!Array.isArray(layers)) throw malformed(file, `Layers of image ${i} is not a list`);
    if (layers.length > MAX_LAYERS) throw malformed(file, `image ${i} has ${layers.length} layers, the limit is ${MAX_LAYERS}`);
    return { config, repoTags: tags as string[], layers: layers.map((l: unknown, j) => archivePath(l, `layer ${j} of image ${i}`, file)) };
  });
}

/** RepoTags as comparable names ("busybox:latest" -> "docker.io/library/busybox:latest"). */
function normalizeTag(tag: string): string {
  try {
    return dockerName(parseDockerReference(tag));
  } catch {
    return tag;
  }
}

export function selectArchiveImage(images: readonly ArchiveImage[], ref: Pick<DockerArchiveReference, 'tag' | 'index'>, description: string): ArchiveImage {
  const listed = () => images.map((img, i) => `@${i}${img.repoTags.length ? ` (${img.repoTags.join(', ')})` : ''}`).join(', ');
  if (ref.index !== undefined) {
    const img = images[ref.index];
    if (img === undefined) throw new BerthError('IMAGE_NOT_FOUND', `${description}: the archive has no image @${ref.index} (it has ${listed()})`, { hint: 'choose one of the listed images' });
    return img;
  }
  if (ref.tag !== undefined) {
    const matches = images.filter((img) => img.repoTags.some((t) => normalizeTag(t) === ref.tag));
    if (matches.length === 0) throw new BerthError('IMAGE_NOT_FOUND', `image ${description} not found (the archive has ${listed()})`, { hint: 'name one of the listed tags, or @N' });
    return matches[0]!;
  }
  if (images.length === 1) return images[0]!;
  throw new BerthError('USAGE', `${description} is ambiguous: the archive holds ${images.length} images (${listed()})`, { hint: 'add :NAME:TAG or :@N' });
}

/** Digest and compression of an entry, by reading it once. */
async function inspect(tar: TarIndex, e: TarEntry): Promise<{ digest: Digest; head: Buffer }> {
  const hash = createHash('sha256');
  let head = Buffer.alloc(0);
  for await (const chunk of tar.stream(e)) {
    if (head.length < 4) head = Buffer.concat([head, chunk as Buffer]).subarray(0, 4);
    hash.update(chunk as Buffer);
  }
  return { digest: `sha256:${hash.digest('hex')}` as Digest, head };
}

function layerMediaType(head: Buffer): string {
  if (head[0] === 0x1f && head[1] === 0x8b) return MediaType.dockerLayerGzip;
  if (head.length === 4 && head.readUInt32LE(0) === 0xfd2fb528) return MediaType.ociLayerZstd;
  return DOCKER_LAYER_TAR;
}

export class DockerArchiveImageSource implements ImageSource {
  readonly reference: DockerArchiveReference;
  readonly description: string;
  readonly platform: Platform | undefined;
  readonly #tar: TarIndex;
  readonly #manifest: Buffer;
  readonly #manifestDigest: Digest;
  readonly #blobs: ReadonlyMap<string, TarEntry>;

  private constructor(reference: DockerArchiveReference, tar: TarIndex, manifest: Buffer, blobs: Map<string, TarEntry>, platform: Platform | undefined) {
    this.reference = reference;
    this.description = formatDockerArchiveReference(reference);
    this.platform = platform;
    this.#tar = tar;
    this.#manifest = manifest;
    this.#manifestDigest = digestOf(manifest);
    this.#blobs = blobs;
  }

  static async open(reference: DockerArchiveReference, platform?: Platform): Promise<DockerArchiveImageSource> {
    const description = formatDockerArchiveReference(reference);
    const tar = await TarIndex.open(reference.file, 'docker-archive');
    const bytes = await tar.read('manifest.json', MAX_MANIFEST_BYTES, 'manifest.json');
    if (bytes === undefined) throw new BerthError('IMAGE_NOT_FOUND', `${reference.file} is not a docker-archive (no manifest.json)`, { hint: 'create it with docker save or skopeo copy ... docker-archive:FILE' });
    const image = selectArchiveImage(parseArchiveManifest(bytes, reference.file), reference, description);
    const entry = (name: string, what: string) => {
      const e = tar.get(name);
      if (e === undefined) throw new BerthError('IMAGE_NOT_FOUND', `${what} ${name} of ${description} is missing from the archive`, { hint: 'the archive is incomplete; create it again' });
      return e;
    };
    const configEntry = entry(image.config, 'config');
    const configBytes = await tar.read(image.config, MAX_CONFIG_BYTES, 'image config');
    // Checked as JSON object here so a broken archive fails before any layer is hashed.
    parseJson(configBytes!, `config of ${description}`, MAX_CONFIG_BYTES);
    const blobs = new Map<string, TarEntry>();
    const configDigest = digestOf(configBytes!);
    blobs.set(configDigest, configEntry);
    const layers = [];
    for (const name of image.layers) {
      const e = entry(name, 'layer');
      const { digest, head } = await inspect(tar, e);
      blobs.set(digest, e);
      layers.push({ mediaType: layerMediaType(head), size: e.size, digest });
    }
    const manifest = Buffer.from(JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.dockerManifest,
      config: { mediaType: MediaType.dockerConfig, size: configEntry.size, digest: configDigest },
      layers,
    }));
    return new DockerArchiveImageSource(reference, tar, manifest, blobs, platform);
  }

  async getManifest(digest?: Digest): Promise<UntrustedManifest> {
    if (digest !== undefined && digest !== this.#manifestDigest) {
      throw new BerthError('IMAGE_NOT_FOUND', `manifest ${digest} is not in ${this.description}`, { hint: 'a docker-archive holds one manifest per image' });
    }
    return { untrustedBytes: this.#manifest, mediaType: MediaType.dockerManifest, claimedDigest: this.#manifestDigest };
  }

  async getBlob(descriptor: BlobDescriptor, options: BlobOptions = {}): Promise<Readable> {
    const e = this.#blobs.get(descriptor.digest);
    if (e === undefined) throw new BerthError('IMAGE_NOT_FOUND', `blob ${descriptor.digest} is not in ${this.description}`, { hint: 'the archive is incomplete; create it again' });
    return this.#tar.stream(e, options.offset ?? 0);
  }

  async close(): Promise<void> {}
}
