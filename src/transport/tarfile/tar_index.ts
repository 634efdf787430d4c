/**
 * Random access to the regular files of an uncompressed tar archive, without
 * extracting it: one pass over the headers records where each file's data
 * is; reads are then ranges of the archive file. Every header decision is
 * image/tar-header.ts's, shared with the store's layer reader, so both read
 * an archive the same way. Entry names are only lookup keys here, never
 * filesystem paths; names from the archive's own JSON must pass
 * archivePath() first.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { BerthError, errnoCode } from '../../errors.ts';
import { TAR_BLOCK, TarHeaderDecoder, tarPadding, type TarHeader } from '../../image/tar-header.ts';

export interface TarEntry {
  readonly name: string;
  /** Byte offset of the data in the archive. */
  readonly offset: number;
  readonly size: number;
}

const MAX_ENTRIES = 100_000;

function corrupt(file: string, why: string): BerthError {
  return new BerthError('MANIFEST_INVALID', `${file} is not a valid tar archive: ${why}`, { hint: 'the archive is truncated or corrupt; create it again' });
}

/** "./a//b/" -> "a/b" (as a lookup key). */
export function entryKey(name: string): string {
  return name.split('/').filter((c) => c !== '' && c !== '.').join('/');
}

/** A link target relative to the archive root, or undefined when it climbs out. */
function normalizeInside(p: string): string | undefined {
  const out: string[] = [];
  for (const c of p.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') {
      if (out.length === 0) return undefined;
      out.pop();
    } else out.push(c);
  }
  return out.join('/');
}

/**
 * A path named inside the archive's own JSON (manifest.json Layers, Config):
 * relative, no "..", no NUL. Anything else is hostile.
 */
export function archivePath(untrusted: unknown, what: string, archive: string): string {
  if (typeof untrusted !== 'string' || untrusted === '' || untrusted.length > 4096) {
    throw new BerthError('MANIFEST_INVALID', `${what} in ${archive} is not a file name`, { hint: 'the archive is malformed' });
  }
  const parts = untrusted.split('/');
  if (untrusted.startsWith('/') || untrusted.includes('\0') || untrusted.includes('\\') || parts.includes('..')) {
    throw new BerthError('UNSAFE_PATH', `${what} in ${archive} names ${JSON.stringify(untrusted.slice(0, 200))}, outside the archive`, {
      hint: 'the archive is malformed or hostile; nothing was read from outside it',
    });
  }
  const key = entryKey(untrusted);
  if (key === '') throw new BerthError('MANIFEST_INVALID', `${what} in ${archive} is empty`, { hint: 'the archive is malformed' });
  return key;
}

/**
 * Every entry of the tar file open as `handle`, in order, with the offset of
 * its data; `visit` may throw to stop. The data and padding of every entry
 * must be in the file, as the streaming reader requires.
 */
export async function scanTar(handle: fsp.FileHandle, file: string, visit: (h: TarHeader, dataOffset: number) => void): Promise<void> {
  const { size: fileSize } = await handle.stat();
  const decoder = new TarHeaderDecoder(file);
  const read = async (len: number, at: number): Promise<Buffer> => {
    const buf = Buffer.alloc(len);
    let have = 0;
    while (have < len) {
      const { bytesRead } = await handle.read(buf, have, len - have, at + have);
      if (bytesRead === 0) break;
      have += bytesRead;
    }
    return buf.subarray(0, have);
  };
  let pos = 0;
  for (;;) {
    const step = decoder.header(await read(TAR_BLOCK, pos), pos);
    if (step.kind === 'zero') decoder.end(await read(TAR_BLOCK, pos + TAR_BLOCK));
    if (step.kind === 'zero' || step.kind === 'end') return;
    const data = pos + TAR_BLOCK;
    const size = step.kind === 'extended' ? step.size : step.header.size;
    const next = data + size + tarPadding(size);
    // The streaming reader hands out a header before it finds its data cut off; so does this.
    if (step.kind === 'extended') decoder.extended(await read(size, data));
    else visit(step.header, data);
    if (next > fileSize) throw decoder.truncated(fileSize);
    pos = next;
  }
}

export class TarIndex {
  readonly file: string;
  readonly #entries: ReadonlyMap<string, TarEntry>;
  /** Link name -> target key, or undefined when the target leaves the archive. */
  readonly #links: ReadonlyMap<string, string | undefined>;

  private constructor(file: string, entries: Map<string, TarEntry>, links: Map<string, string | undefined>) {
    this.file = file;
    this.#entries = entries;
    this.#links = links;
  }

  /** Index `file`; refuses compressed archives with a clear error. */
  static async open(file: string, what = 'archive'): Promise<TarIndex> {
    let handle: fsp.FileHandle;
    try {
      handle = await fsp.open(file, 'r');
    } catch (e) {
      const missing = errnoCode(e) === 'ENOENT';
      throw new BerthError(missing ? 'IMAGE_NOT_FOUND' : 'IO_ERROR', `cannot open ${what} ${file}: ${missing ? 'no such file' : (e as Error).message}`, { hint: 'check the path', cause: e });
    }
    try {
      const magic = Buffer.alloc(4);
      await handle.read(magic, 0, 4, 0);
      if (magic[0] === 0x1f && magic[1] === 0x8b) throw new BerthError('USAGE', `${what} ${file} is gzip-compressed`, { hint: 'only uncompressed tar archives are read; decompress it first (gunzip)' });
      if (magic.readUInt32LE(0) === 0xfd2fb528) throw new BerthError('USAGE', `${what} ${file} is zstd-compressed`, { hint: 'only uncompressed tar archives are read; decompress it first (zstd -d)' });

      const entries = new Map<string, TarEntry>();
      const links = new Map<string, string | undefined>();
      let count = 0;
      await scanTar(handle, file, (h, data) => {
        if (++count > MAX_ENTRIES) throw corrupt(file, `more than ${MAX_ENTRIES} entries`);
        if (h.type !== 'file' && h.type !== 'hardlink' && h.type !== 'symlink') return;
        const key = entryKey(h.name);
        if (entries.has(key) || links.has(key)) throw corrupt(file, `${JSON.stringify(key.slice(0, 200))} appears twice`);
        if (h.type === 'file') {
          entries.set(key, { name: key, offset: data, size: h.size });
          return;
        }
        // docker save links duplicate layers; the target is resolved inside the archive only.
        // Symlinks are relative to their directory, hard links to the archive root.
        const dir = h.type === 'symlink' ? key.split('/').slice(0, -1).join('/') : '';
        links.set(key, h.linkname.startsWith('/') ? undefined : normalizeInside(`${dir}/${h.linkname}`));
      });
      return new TarIndex(path.resolve(file), entries, links);
    } finally {
      await handle.close();
    }
  }

  /** The regular file `name`, following (a few) links inside the archive. */
  get(name: string): TarEntry | undefined {
    let key: string | undefined = entryKey(name);
    for (let hops = 0; hops < 8 && key !== undefined; hops++) {
      const e = this.#entries.get(key);
      if (e !== undefined) return e;
      if (!this.#links.has(key)) return undefined;
      key = this.#links.get(key);
    }
    return undefined;
  }

  /** The whole entry, refusing more than `cap` bytes; undefined when absent. */
  async read(name: string, cap: number, what: string): Promise<Buffer | undefined> {
    const e = this.get(name);
    if (e === undefined) return undefined;
    if (e.size > cap) throw new BerthError('MANIFEST_INVALID', `${what} in ${this.file} is ${e.size} bytes, the limit is ${cap}`, { hint: 'the archive is malformed or hostile' });
    const handle = await fsp.open(this.file, 'r');
    try {
      const buf = Buffer.alloc(e.size);
      const { bytesRead } = await handle.read(buf, 0, e.size, e.offset);
      if (bytesRead < e.size) throw corrupt(this.file, `${e.name} is cut off`);
      return buf;
    } finally {
      await handle.close();
    }
  }

  /** A stream of the entry's bytes from `from`; each stream owns its file handle. */
  stream(e: TarEntry, from = 0): Readable {
    if (e.size - from <= 0) return Readable.from([]);
    return fs.createReadStream(this.file, { start: e.offset + from, end: e.offset + e.size - 1 });
  }
}
