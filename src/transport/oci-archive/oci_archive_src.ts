/**
 * Reading an image from oci-archive:FILE[:REF], an uncompressed tar of an
 * OCI image layout. Nothing is extracted: blobs are read as ranges of the
 * archive (see tarfile/tar_index.ts).
 */
import type { Readable } from 'node:stream';
import type { Digest } from '../../image/digest.ts';
import type { Platform } from '../../image/manifest.ts';
import { OciLayout, type LayoutFiles } from '../oci/layout.ts';
import { TarIndex } from '../tarfile/tar_index.ts';
import type { BlobDescriptor, BlobOptions, ImageSource, UntrustedManifest } from '../types.ts';
import { formatOciArchiveReference, type OciArchiveReference } from './reference.ts';

class ArchiveFiles implements LayoutFiles {
  readonly where: string;
  readonly #tar: TarIndex;

  constructor(tar: TarIndex) {
    this.#tar = tar;
    this.where = tar.file;
  }

  read(name: string, cap: number, what: string): Promise<Buffer | undefined> {
    return this.#tar.read(name, cap, what);
  }

  async open(name: string, offset: number): Promise<Readable | undefined> {
    const e = this.#tar.get(name);
    return e === undefined ? undefined : this.#tar.stream(e, offset);
  }
}

export class OciArchiveImageSource implements ImageSource {
  readonly reference: OciArchiveReference;
  readonly description: string;
  readonly platform: Platform | undefined;
  readonly #layout: OciLayout;

  private constructor(reference: OciArchiveReference, tar: TarIndex, platform: Platform | undefined) {
    this.reference = reference;
    this.description = formatOciArchiveReference(reference);
    this.platform = platform;
    this.#layout = new OciLayout(new ArchiveFiles(tar), reference.ref, this.description, `oci-archive:${reference.file}:NAME`);
  }

  static async open(reference: OciArchiveReference, platform?: Platform): Promise<OciArchiveImageSource> {
    return new OciArchiveImageSource(reference, await TarIndex.open(reference.file, 'oci-archive'), platform);
  }

  getManifest(digest?: Digest): Promise<UntrustedManifest> {
    return this.#layout.getManifest(digest);
  }

  getBlob(descriptor: BlobDescriptor, options: BlobOptions = {}): Promise<Readable> {
    return this.#layout.getBlob(descriptor, options.offset ?? 0);
  }

  async close(): Promise<void> {}
}
