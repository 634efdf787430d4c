/** Reading an image from an OCI image layout directory (image-spec image-layout.md). */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { BerthError, errnoCode } from '../../errors.ts';
import { encodedOf, parseDigest, type Digest } from '../../image/digest.ts';
import { MAX_MANIFEST_BYTES, parseManifest, type Descriptor } from '../../image/manifest.ts';
import { formatReference, type OciLayoutReference } from '../../image/reference.ts';
import type { ImageSource, UntrustedManifest } from '../types.ts';

const REF_NAME = 'org.opencontainers.image.ref.name';

export class OciImageSource implements ImageSource {
  readonly reference: OciLayoutReference;
  readonly description: string;

  constructor(reference: OciLayoutReference) {
    this.reference = reference;
    this.description = formatReference(reference);
  }

  async getManifest(digest?: Digest): Promise<UntrustedManifest> {
    const descriptor = digest === undefined ? await this.resolveRef() : undefined;
    const target = digest ?? descriptor!.digest;
    const untrustedBytes = await this.readBlob(target, MAX_MANIFEST_BYTES, `manifest ${target}`);
    return { untrustedBytes, mediaType: descriptor?.mediaType, claimedDigest: target };
  }

  async getBlob(descriptor: Descriptor): Promise<Readable> {
    const file = this.blobPath(descriptor.digest);
    const handle = await fs.open(file, 'r').catch((e: unknown) => {
      throw this.missing(descriptor.digest, e);
    });
    return handle.createReadStream();
  }

  async close(): Promise<void> {}

  private async resolveRef(): Promise<Descriptor> {
    await fs.readFile(path.join(this.reference.dir, 'oci-layout'), 'utf8').catch((e: unknown) => {
      throw new BerthError(errnoCode(e) === 'ENOENT' ? 'IMAGE_NOT_FOUND' : 'IO_ERROR', `${this.reference.dir} is not an OCI image layout (no oci-layout file)`, {
        hint: 'give the directory that holds oci-layout, index.json and blobs/',
        cause: e,
      });
    });
    const bytes = await this.readFileCapped(path.join(this.reference.dir, 'index.json'), MAX_MANIFEST_BYTES, 'index.json');
    const index = parseManifest(bytes, undefined, `${this.reference.dir}/index.json`);
    if (index.kind !== 'index') throw new BerthError('MANIFEST_INVALID', `${this.reference.dir}/index.json is not an image index`, { hint: 'the layout is malformed' });
    const { ref } = this.reference;
    const matches = ref === undefined ? index.manifests : index.manifests.filter((m) => m.annotations?.[REF_NAME] === ref);
    if (matches.length === 1) return matches[0]!;
    const names = index.manifests.map((m) => m.annotations?.[REF_NAME]).filter((n): n is string => n !== undefined);
    if (matches.length === 0) {
      throw new BerthError('IMAGE_NOT_FOUND', `image ${this.description} not found${names.length ? ` (the layout has: ${names.join(', ')})` : ''}`, {
        hint: 'name one of the layout\'s images as oci:DIR:NAME',
      });
    }
    throw new BerthError('USAGE', `${this.description} is ambiguous: the layout holds ${matches.length} images (${names.join(', ')})`, {
      hint: 'name one as oci:DIR:NAME',
    });
  }

  private blobPath(digest: Digest): string {
    // The digest was validated, so its encoded part is a safe file name.
    const d = parseDigest(digest);
    return path.join(this.reference.dir, 'blobs', d.slice(0, d.indexOf(':')), encodedOf(d));
  }

  private async readBlob(digest: Digest, cap: number, what: string): Promise<Buffer> {
    return this.readFileCapped(this.blobPath(digest), cap, what).catch((e: unknown) => {
      if (e instanceof BerthError) throw e;
      throw this.missing(digest, e);
    });
  }

  private async readFileCapped(file: string, cap: number, what: string): Promise<Buffer> {
    const handle = await fs.open(file, 'r');
    try {
      const { size } = await handle.stat();
      if (size > cap) throw new BerthError('MANIFEST_INVALID', `${what} in ${this.reference.dir} is ${size} bytes, the limit is ${cap}`, { hint: 'the layout is malformed or hostile' });
      const buf = Buffer.alloc(size);
      const { bytesRead } = await handle.read(buf, 0, size, 0);
      return buf.subarray(0, bytesRead);
    } finally {
      await handle.close();
    }
  }

  private missing(digest: Digest, e: unknown): BerthError {
    return new BerthError('IMAGE_NOT_FOUND', `blob ${digest} is missing from ${this.reference.dir}`, { hint: 'the layout is incomplete; copy it again', cause: e });
  }
}
