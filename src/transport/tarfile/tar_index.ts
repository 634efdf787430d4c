/**
 * Random access to the regular files of an uncompressed tar archive, without
 * extracting it: one pass over the headers records where each file's data
 * is; reads are then ranges of the archive file. Understands ustar, GNU long
 * names and PAX path/size records. Entry names are only lookup keys here,
 * never filesystem paths; names from the archive's own JSON must pass
 * archivePath() first.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { BerthError, errnoCode } from '../../errors.ts';

export interface TarEntry {
  readonly name: string;
  /** Byte offset of the data in the archive. */
  readonly offset: number;
  readonly size: number;
}

const BLOCK = 512;
const MAX_ENTRIES = 100_000;
const MAX_META_BYTES = 1024 * 1024;

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

function cString(b: Buffer, start: number, len: number): string {
  const s = b.subarray(start, start + len);
  const nul = s.indexOf(0);
  return (nul < 0 ? s : s.subarray(0, nul)).toString('utf8');
}

function octal(b: Buffer, start: number, len: number, file: string): number {
  const f = b.subarray(start, start + len);
  if ((f[0]! & 0x80) !== 0) {
    // GNU base-256: big-endian, first byte's top bit is the marker.
    let v = f[0]! & 0x7f;
    for (let i = 1; i < f.length; i++) v = v * 256 + f[i]!;
    if (!Number.isSafeInteger(v)) throw corrupt(file, 'a size is too large');
    return v;
  }
  const s = cString(f, 0, len).trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw corrupt(file, `bad number ${JSON.stringify(s)} in a header`);
  return parseInt(s, 8);
}

function checksumOk(h: Buffer): boolean {
  const stored = parseInt(cString(h, 148, 8).trim() || 'x', 8);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i]!;
  return stored === sum;
}

/** PAX extended header records: "LEN key=value\n"... */
function paxRecords(data: Buffer): Map<string, string> {
  const out = new Map<string, string>();
  let i = 0;
  while (i < data.length) {
    const sp = data.indexOf(0x20, i);
    if (sp < 0) break;
    const len = Number(data.subarray(i, sp).toString('ascii'));
    if (!Number.isSafeInteger(len) || len <= sp - i || i + len > data.length) break;
    const rec = data.subarray(sp + 1, i + len - 1).toString('utf8');
    const eq = rec.indexOf('=');
    if (eq > 0) out.set(rec.slice(0, eq), rec.slice(eq + 1));
    i += len;
  }
  return out;
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
      const { size: fileSize } = await handle.stat();
      const header = Buffer.alloc(BLOCK);
      const readAt = async (buf: Buffer, len: number, pos: number) => {
        const { bytesRead } = await handle.read(buf, 0, len, pos);
        return bytesRead;
      };
      const magic = Buffer.alloc(4);
      await readAt(magic, 4, 0);
      if (magic[0] === 0x1f && magic[1] === 0x8b) throw new BerthError('USAGE', `${what} ${file} is gzip-compressed`, { hint: 'only uncompressed tar archives are read; decompress it first (gunzip)' });
      if (magic.readUInt32LE(0) === 0xfd2fb528) throw new BerthError('USAGE', `${what} ${file} is zstd-compressed`, { hint: 'only uncompressed tar archives are read; decompress it first (zstd -d)' });

      const entries = new Map<string, TarEntry>();
      let pos = 0;
      let longName: string | undefined;
      let longLink: string | undefined;
      const links = new Map<string, string | undefined>();
      let pax: Map<string, string> | undefined;
      let count = 0;
      for (;;) {
        const n = await readAt(header, BLOCK, pos);
        if (n === 0) break; // EOF without end marker: tolerated (as GNU tar does)
        if (n < BLOCK) throw corrupt(file, 'truncated header');
        if (header.every((b) => b === 0)) break; // end of archive
        if (!checksumOk(header)) throw corrupt(file, `bad header checksum at byte ${pos}`);
        if (++count > MAX_ENTRIES) throw corrupt(file, `more than ${MAX_ENTRIES} entries`);
        const type = String.fromCharCode(header[156]!);
        let size = octal(header, 124, 12, file);
        const data = pos + BLOCK;
        let name = cString(header, 0, 100);
        if (cString(header, 257, 5) === 'ustar') {
          const prefix = cString(header, 345, 155);
          if (prefix !== '') name = `${prefix}/${name}`;
        }
        if (type === 'L' || type === 'K' || type === 'x' || type === 'g') {
          if (size > MAX_META_BYTES) throw corrupt(file, 'an extended header is too large');
          const meta = Buffer.alloc(size);
          if ((await readAt(meta, size, data)) < size) throw corrupt(file, 'truncated extended header');
          if (type === 'L') longName = cString(meta, 0, size);
          else if (type === 'K') longLink = cString(meta, 0, size);
          else if (type === 'x') pax = paxRecords(meta);
        } else {
          if (pax?.has('path')) name = pax.get('path')!;
          else if (longName !== undefined) name = longName;
          if (pax?.has('size')) {
            const s = Number(pax.get('size'));
            if (!Number.isSafeInteger(s) || s < 0) throw corrupt(file, 'bad PAX size');
            size = s;
          }
          longName = undefined;
          if (type === '0' || type === '\0' || type === '7' || type === '1' || type === '2') {
            const key = entryKey(name);
            if (entries.has(key) || links.has(key)) throw corrupt(file, `${JSON.stringify(key.slice(0, 200))} appears twice`);
            if (type === '1' || type === '2') {
              // docker save links duplicate layers; the target is resolved inside the archive only.
              // Symlinks are relative to their directory, hard links to the archive root.
              const target = pax?.has('linkpath') ? pax.get('linkpath')! : longLink ?? cString(header, 157, 100);
              const dir = type === '2' ? key.split('/').slice(0, -1).join('/') : '';
              links.set(key, target.startsWith('/') ? undefined : normalizeInside(`${dir}/${target}`));
            } else {
              if (data + size > fileSize) throw corrupt(file, `${JSON.stringify(name.slice(0, 200))} is cut off`);
              entries.set(key, { name: key, offset: data, size });
            }
          }
          longLink = undefined;
          pax = undefined;
        }
        // Directories, links and devices have no data blocks that matter here.
        const dataSize = type === '1' || type === '2' || type === '3' || type === '4' || type === '5' || type === '6' ? 0 : size;
        pos = data + Math.ceil(dataSize / BLOCK) * BLOCK;
      }
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
