/** Reading an image from an OCI image layout directory (image-spec image-layout.md). */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { BerthError, errnoCode } from '../../errors.ts';
import type { Digest } from '../../image/digest.ts';
import type { Platform } from '../../image/manifest.ts';
import type { BlobDescriptor, BlobOptions, ImageSource, UntrustedManifest } from '../types.ts';
import { OciLayout, type LayoutFiles } from './layout.ts';
import { formatOciReference, type OciLayoutReference } from './reference.ts';

/** A layout's files in a directory. Names come from layout.ts (fixed names or validated digests). */
export class DirectoryFiles implements LayoutFiles {
  readonly where: string;

  constructor(dir: string) {
    this.where = dir;
  }

  async read(name: string, cap: number, what: string): Promise<Buffer | undefined> {
    let handle;
    try {
      handle = await fs.open(path.join(this.where, name), 'r');
    } catch (e) {
      if (errnoCode(e) === 'ENOENT' || errnoCode(e) === 'ENOTDIR') return undefined;
      throw this.#ioError(name, e);
    }
    try {
      const { size } = await handle.stat();
      if (size > cap) throw new BerthError('MANIFEST_INVALID', `${what} in ${this.where} is ${size} bytes, the limit is ${cap}`, { hint: 'the layout is malformed or hostile' });
      const buf = Buffer.alloc(size);
      const { bytesRead } = await handle.read(buf, 0, size, 0);
      return buf.subarray(0, bytesRead);
    } finally {
      await handle.close();
    }
  }

  async open(name: string, offset: number): Promise<Readable | undefined> {
    let handle;
    try {
      handle = await fs.open(path.join(this.where, name), 'r');
    } catch (e) {
      if (errnoCode(e) === 'ENOENT' || errnoCode(e) === 'ENOTDIR') return undefined;
      throw this.#ioError(name, e);
    }
    // The stream owns (and closes) its handle.
    return handle.createReadStream({ start: offset });
  }

  #ioError(name: string, e: unknown): BerthError {
    return new BerthError('IO_ERROR', `cannot read ${name} in ${this.where}: ${(e as Error).message}`, { hint: 'check the layout\'s permissions', cause: e });
  }
}

export class OciImageSource implements ImageSource {
  readonly reference: OciLayoutReference;
  readonly description: string;
  readonly platform: Platform | undefined;
  readonly #layout: OciLayout;

  constructor(reference: OciLayoutReference, platform?: Platform) {
    this.reference = reference;
    this.description = formatOciReference(reference);
    this.platform = platform;
    this.#layout = new OciLayout(new DirectoryFiles(reference.dir), reference.ref, this.description, `oci:${reference.dir}:NAME`);
  }

  getManifest(digest?: Digest): Promise<UntrustedManifest> {
    return this.#layout.getManifest(digest);
  }

  getBlob(descriptor: BlobDescriptor, options: BlobOptions = {}): Promise<Readable> {
    return this.#layout.getBlob(descriptor, options.offset ?? 0);
  }

  async close(): Promise<void> {}
}
