/**
 * An OCI image layout (image-spec image-layout.md) read through any medium
 * that can hand out its files: a directory (oci:) or a tar of one
 * (oci-archive:). Selecting the image by org.opencontainers.image.ref.name
 * and the size caps live here once for both.
 */
import type { Readable } from 'node:stream';
import { BerthError } from '../../errors.ts';
import { encodedOf, parseDigest, type Digest } from '../../image/digest.ts';
import { MAX_MANIFEST_BYTES, parseManifest, type Descriptor } from '../../image/manifest.ts';
import type { UntrustedManifest } from '../types.ts';

const REF_NAME = 'org.opencontainers.image.ref.name';

/** Files of a layout by their relative name ("index.json", "blobs/sha256/<hex>"). */
export interface LayoutFiles {
  /** For messages: the directory or archive. */
  readonly where: string;
  /** The whole file, at most `cap` bytes (else MANIFEST_INVALID); undefined when absent. */
  read(name: string, cap: number, what: string): Promise<Buffer | undefined>;
  /** The file's bytes from `offset`; undefined when absent. */
  open(name: string, offset: number): Promise<Readable | undefined>;
}

export class OciLayout {
  readonly #files: LayoutFiles;
  readonly #ref: string | undefined;
  readonly #description: string;
  readonly #form: string;

  /** `form` shows how to name an image in messages, e.g. "oci:DIR:NAME". */
  constructor(files: LayoutFiles, ref: string | undefined, description: string, form: string) {
    this.#files = files;
    this.#ref = ref;
    this.#description = description;
    this.#form = form;
  }

  async getManifest(digest?: Digest): Promise<UntrustedManifest> {
    const descriptor = digest === undefined ? await this.#resolveRef() : undefined;
    const target = digest ?? descriptor!.digest;
    const untrustedBytes = await this.#files.read(blobName(target), MAX_MANIFEST_BYTES, `manifest ${target}`);
    if (untrustedBytes === undefined) throw this.#missing(target);
    return { untrustedBytes, mediaType: descriptor?.mediaType, claimedDigest: target };
  }

  async getBlob(descriptor: Descriptor, offset = 0): Promise<Readable> {
    const stream = await this.#files.open(blobName(descriptor.digest), offset);
    if (stream === undefined) throw this.#missing(descriptor.digest);
    return stream;
  }

  async #resolveRef(): Promise<Descriptor> {
    const where = this.#files.where;
    const marker = await this.#files.read('oci-layout', 64 * 1024, 'oci-layout');
    if (marker === undefined) {
      throw new BerthError('IMAGE_NOT_FOUND', `${where} is not an OCI image layout (no oci-layout file)`, {
        hint: 'give the layout that holds oci-layout, index.json and blobs/',
      });
    }
    const bytes = await this.#files.read('index.json', MAX_MANIFEST_BYTES, 'index.json');
    if (bytes === undefined) throw new BerthError('IMAGE_NOT_FOUND', `${where} has no index.json`, { hint: 'the layout is incomplete; copy it again' });
    const index = parseManifest(bytes, undefined, `${where}/index.json`);
    if (index.kind !== 'index') throw new BerthError('MANIFEST_INVALID', `${where}/index.json is not an image index`, { hint: 'the layout is malformed' });
    const ref = this.#ref;
    const matches = ref === undefined ? index.manifests : index.manifests.filter((m) => m.annotations?.[REF_NAME] === ref);
    if (matches.length === 1) return matches[0]!;
    const names = index.manifests.map((m) => m.annotations?.[REF_NAME]).filter((n): n is string => n !== undefined);
    if (matches.length === 0) {
      throw new BerthError('IMAGE_NOT_FOUND', `image ${this.#description} not found${names.length ? ` (the layout has: ${names.join(', ')})` : ''}`, {
        hint: `name one of the layout's images as ${this.#form}`,
      });
    }
    throw new BerthError('USAGE', `${this.#description} is ambiguous: the layout holds ${matches.length} images (${names.join(', ')})`, {
      hint: `name one as ${this.#form}`,
    });
  }

  #missing(digest: Digest): BerthError {
    return new BerthError('IMAGE_NOT_FOUND', `blob ${digest} is missing from ${this.#files.where}`, { hint: 'the layout is incomplete; copy it again' });
  }
}

/** blobs/<alg>/<hex>: the digest was validated, so this is a safe relative name. */
export function blobName(digest: Digest): string {
  const d = parseDigest(digest);
  return `blobs/${d.slice(0, d.indexOf(':'))}/${encodedOf(d)}`;
}
