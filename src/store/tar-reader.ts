/**
 * A pull-based reader for untrusted tar streams (ustar, GNU and PAX), written
 * for the store rather than reusing tar-stream because the store needs:
 *  - a cap on extended headers well below tar-stream's fixed 4 MiB, checked
 *    from the declared size before anything is buffered;
 *  - PAX `SCHILY.xattr.*` values as raw bytes (tar-stream decodes them as
 *    UTF-8, which corrupts binary values such as security.capability);
 *  - a byte budget over the whole stream (decompression bombs);
 *  - backpressure by construction: nothing is read from the source until
 *    the consumer asks, and entry data is handed out as slices of the
 *    source's chunks (no copies);
 *  - the upstream error (e.g. a digest mismatch detected by the caller's
 *    verifying stream) surfaced as is.
 *
 * Parsing follows Go's archive/tar, which Docker, containerd and podman use,
 * so the store sees what they see: header-only types (links, directories,
 * devices, fifos) carry no data whatever their size field says; a zero block
 * ends the archive only when followed by another zero block or the end of
 * the stream; a typeflag '\0' name ending in "/" is a directory; PAX records
 * override GNU long names, which override the header fields. Sparse files
 * and other exotic types are refused.
 *
 * Names are decoded as UTF-8; bytes that are not valid UTF-8 become U+FFFD
 * (as with tar-stream). Such names are rare in images; they stay inside the
 * root because normalisation happens after decoding.
 */
import { layerInvalid, quoteName } from './secure-path.ts';

export type TarEntryType = 'file' | 'hardlink' | 'symlink' | 'char' | 'block' | 'dir' | 'fifo';

/** One entry's header, after extended headers are applied. Everything in it is untrusted. */
export interface TarHeader {
  /** The entry name as written; not normalised. */
  name: string;
  type: TarEntryType;
  /** Permission bits incl. setuid/setgid/sticky; file-type bits dropped. */
  mode: number;
  uid: number;
  gid: number;
  /** Seconds since the epoch, possibly fractional (PAX). */
  mtime: number;
  /** Bytes of data that follow; 0 for header-only types. */
  size: number;
  linkname: string;
  devmajor: number;
  devminor: number;
  /** From PAX SCHILY.xattr.NAME records, raw values. */
  xattrs: Map<string, Buffer>;
  /** Byte offset of the entry's first header block, for messages. */
  offset: number;
}

export interface TarLimits {
  /** Most bytes read from the source in total, trailing data included. */
  maxBytes: number;
  /** Largest extended header (PAX or GNU long name) accepted, and largest sum of them for one entry. */
  maxExtendedHeaderBytes: number;
}

export const DEFAULT_MAX_EXTENDED_HEADER_BYTES = 1024 * 1024;

const BLOCK = 512;
const EMPTY = Buffer.alloc(0);
/** Largest id we accept; 2^32-1 is (uid_t)-1, "no change", never a real owner. */
const MAX_ID = 0xfffffffe;
/** Most xattrs and xattr bytes per entry (Linux: 64 KiB per value, and few per file in practice). */
const MAX_XATTRS = 128;
const MAX_XATTR_BYTES = 256 * 1024;
const XATTR_PREFIX = 'SCHILY.xattr.';

export class TarReader {
  private readonly it: AsyncIterator<unknown>;
  private chunk: Buffer = EMPTY;
  private pos = 0;
  private consumed = 0;
  /** Data bytes of the current entry not yet handed out, then its padding. */
  private dataLeft = 0;
  private padLeft = 0;
  private ended = false;
  private sourceDone = false;
  private readonly global = new Map<string, Buffer>();
  /** Set when the source itself failed; importers rethrow it as is. */
  upstreamError: { error: unknown } | undefined;

  constructor(
    source: AsyncIterable<unknown>,
    private readonly limits: TarLimits,
  ) {
    this.it = source[Symbol.asyncIterator]();
  }

  /** Bytes read from the source so far. */
  get bytesRead(): number {
    return this.consumed;
  }

  /**
   * The next entry's header, or null at the end of the archive. Unread data
   * of the previous entry is skipped.
   */
  async next(): Promise<TarHeader | null> {
    if (this.ended) return null;
    await this.skip(this.dataLeft + this.padLeft);
    this.dataLeft = this.padLeft = 0;

    let longName: string | undefined;
    let longLink: string | undefined;
    let pax: Map<string, Buffer> | undefined;
    let extendedBytes = 0;
    /** Where this entry's first (extended) header starts, for messages. */
    let start: number | undefined;
    for (;;) {
      const offset = this.consumed - this.buffered();
      const block = await this.readExact(BLOCK, true);
      if (block === null) {
        // EOF without an end-of-archive marker: Go accepts it between entries.
        if (longName !== undefined || longLink !== undefined || pax !== undefined) throw this.invalid(offset, 'an extended header is not followed by an entry');
        this.ended = true;
        return null;
      }
      if (isZero(block)) {
        const second = await this.readExact(BLOCK, true);
        if (second !== null && !isZero(second)) throw this.invalid(offset, 'a zero block is followed by data');
        if (longName !== undefined || longLink !== undefined || pax !== undefined) throw this.invalid(offset, 'an extended header is not followed by an entry');
        this.ended = true;
        return null;
      }
      checkChecksum(block, offset, this);
      const flag = block[156]!;
      const size = parseNumeric(block, 124, 12, 'size', offset, this);
      const typeChar = String.fromCharCode(flag);
      if (typeChar !== 'g') start ??= offset;
      if (typeChar === 'x' || typeChar === 'g' || typeChar === 'L' || typeChar === 'K') {
        extendedBytes += size;
        if (size > this.limits.maxExtendedHeaderBytes || extendedBytes > this.limits.maxExtendedHeaderBytes) {
          throw this.invalid(offset, `extended header of ${size} bytes exceeds the limit of ${this.limits.maxExtendedHeaderBytes}`);
        }
        this.checkBudget(size, offset);
        const data = await this.readExact(size, false);
        await this.skip(padding(size));
        if (typeChar === 'L') longName = cString(data);
        else if (typeChar === 'K') longLink = cString(data);
        else if (typeChar === 'x') parsePax(data, (pax ??= new Map()), offset, this);
        else {
          // A global header applies to every later entry; its size is bounded separately.
          parsePax(data, this.global, offset, this);
          if (mapBytes(this.global) > this.limits.maxExtendedHeaderBytes) throw this.invalid(offset, 'global extended headers exceed the limit');
          extendedBytes -= size;
        }
        continue;
      }
      return this.entry(block, flag, size, start ?? offset, longName, longLink, pax);
    }
  }

  /** The current entry's data, as slices of the source's chunks. Read at most once. */
  async *data(): AsyncGenerator<Buffer, void, undefined> {
    while (this.dataLeft > 0) {
      if (this.pos >= this.chunk.length && !(await this.fill())) throw this.truncated();
      const n = Math.min(this.dataLeft, this.chunk.length - this.pos);
      const slice = this.chunk.subarray(this.pos, this.pos + n);
      this.pos += n;
      this.dataLeft -= n;
      yield slice;
    }
  }

  /**
   * Read the source to its end after the end-of-archive marker, so that
   * whatever verifies the stream (digests) has seen every byte. Trailing
   * bytes count against maxBytes.
   */
  async drain(): Promise<void> {
    this.pos = this.chunk.length;
    while (await this.fill()) this.pos = this.chunk.length;
  }

  /** Stop reading and release the source (destroys a Node stream). */
  async close(): Promise<void> {
    if (this.sourceDone) return;
    this.sourceDone = true;
    try {
      await this.it.return?.();
    } catch {
      // the source's own error is reported through upstreamError, if at all
    }
  }

  invalid(offset: number, why: string): Error {
    return layerInvalid(`layer is not a valid tar archive: ${why} (at byte ${offset})`);
  }

  private entry(
    block: Buffer,
    flag: number,
    headerSize: number,
    offset: number,
    longName: string | undefined,
    longLink: string | undefined,
    pax: Map<string, Buffer> | undefined,
  ): TarHeader {
    const magic = block.toString('latin1', 257, 263);
    let name = cString(block.subarray(0, 100));
    // Only POSIX ustar has a prefix field; GNU keeps atime/ctime there.
    if (magic === 'ustar\0') {
      const prefix = cString(block.subarray(345, 500));
      if (prefix !== '') name = `${prefix}/${name}`;
    }
    const linkname = cString(block.subarray(157, 257));
    let type: TarEntryType;
    switch (String.fromCharCode(flag)) {
      case '\0':
        type = name.endsWith('/') ? 'dir' : 'file';
        break;
      case '0':
      case '7':
        type = 'file';
        break;
      case '1':
        type = 'hardlink';
        break;
      case '2':
        type = 'symlink';
        break;
      case '3':
        type = 'char';
        break;
      case '4':
        type = 'block';
        break;
      case '5':
        type = 'dir';
        break;
      case '6':
        type = 'fifo';
        break;
      default:
        throw this.invalid(offset, `entry ${quoteName(name)} has an unsupported type ${JSON.stringify(String.fromCharCode(flag))}`);
    }
    const h: TarHeader = {
      name,
      type,
      mode: parseNumeric(block, 100, 8, 'mode', offset, this) & 0o7777,
      uid: parseNumeric(block, 108, 8, 'uid', offset, this),
      gid: parseNumeric(block, 116, 8, 'gid', offset, this),
      mtime: parseNumeric(block, 136, 12, 'mtime', offset, this),
      size: headerSize,
      linkname,
      devmajor: type === 'char' || type === 'block' ? parseNumeric(block, 329, 8, 'devmajor', offset, this) : 0,
      devminor: type === 'char' || type === 'block' ? parseNumeric(block, 337, 8, 'devminor', offset, this) : 0,
      xattrs: new Map(),
      offset,
    };
    if (longName !== undefined) h.name = longName;
    if (longLink !== undefined) h.linkname = longLink;
    const merged = pax === undefined ? this.global : mergePax(this.global, pax);
    if (merged.size > 0) this.applyPax(h, merged);
    if (h.uid > MAX_ID || h.gid > MAX_ID) throw this.invalid(offset, `entry ${quoteName(h.name)} has an invalid owner`);
    if (type === 'hardlink' || type === 'symlink' || type === 'dir' || type === 'char' || type === 'block' || type === 'fifo') {
      // Header-only types: their size field does not announce data (archive/tar).
      h.size = 0;
    }
    this.checkBudget(h.size, offset);
    this.dataLeft = h.size;
    this.padLeft = padding(h.size);
    return h;
  }

  private applyPax(h: TarHeader, pax: Map<string, Buffer>): void {
    let xattrBytes = 0;
    for (const [key, raw] of pax) {
      if (key.startsWith(XATTR_PREFIX)) {
        const name = key.slice(XATTR_PREFIX.length);
        if (name === '' || name.includes('\0')) throw this.invalid(h.offset, `entry ${quoteName(h.name)} has an invalid xattr name`);
        xattrBytes += name.length + raw.length;
        if (h.xattrs.size >= MAX_XATTRS || xattrBytes > MAX_XATTR_BYTES) throw this.invalid(h.offset, `entry ${quoteName(h.name)} has too many xattrs`);
        h.xattrs.set(name, raw);
        continue;
      }
      if (key.startsWith('GNU.sparse.')) throw this.invalid(h.offset, `entry ${quoteName(h.name)} is a sparse file, which is not supported`);
      const value = raw.toString('utf8');
      switch (key) {
        case 'path':
          h.name = value;
          break;
        case 'linkpath':
          h.linkname = value;
          break;
        case 'size':
          h.size = paxInteger(value, 'size', h, this);
          break;
        case 'uid':
          h.uid = paxInteger(value, 'uid', h, this);
          break;
        case 'gid':
          h.gid = paxInteger(value, 'gid', h, this);
          break;
        case 'mtime':
          // Fractional seconds are kept; nonsense is ignored like archive/tar's lenient readers do.
          if (/^-?\d{1,15}(\.\d{1,9})?$/.test(value)) h.mtime = Number(value);
          break;
        default:
          // atime, ctime, uname, gname, comment, hdrcharset...: not used
          break;
      }
    }
  }

  private checkBudget(size: number, offset: number): void {
    if (size > this.limits.maxBytes - this.consumed + this.buffered()) {
      throw layerInvalid(`layer is larger than the limit of ${this.limits.maxBytes} bytes (an entry at byte ${offset} declares ${size} bytes)`);
    }
  }

  private truncated(): Error {
    return layerInvalid(`layer is not a valid tar archive: it ends in the middle of an entry (after ${this.consumed} bytes)`);
  }

  private buffered(): number {
    return this.chunk.length - this.pos;
  }

  /** Pull the next chunk from the source; false at its end. */
  private async fill(): Promise<boolean> {
    if (this.sourceDone) return false;
    let r: IteratorResult<unknown>;
    try {
      r = await this.it.next();
    } catch (error) {
      this.upstreamError ??= { error };
      this.sourceDone = true;
      throw error;
    }
    if (r.done) {
      this.sourceDone = true;
      return false;
    }
    const v = r.value;
    let c: Buffer;
    if (Buffer.isBuffer(v)) c = v;
    else if (v instanceof Uint8Array) c = Buffer.from(v.buffer, v.byteOffset, v.byteLength);
    else throw new TypeError('layer stream yielded something other than bytes');
    this.consumed += c.length;
    if (this.consumed > this.limits.maxBytes) {
      throw layerInvalid(`layer is larger than the limit of ${this.limits.maxBytes} bytes`);
    }
    this.chunk = c;
    this.pos = 0;
    return true;
  }

  /**
   * Exactly `n` bytes (copied only when they span chunks). With `eofOk`, null
   * when the source ends before the first byte.
   */
  private async readExact(n: number, eofOk: true): Promise<Buffer | null>;
  private async readExact(n: number, eofOk: false): Promise<Buffer>;
  private async readExact(n: number, eofOk: boolean): Promise<Buffer | null> {
    if (this.chunk.length - this.pos >= n) {
      const b = this.chunk.subarray(this.pos, this.pos + n);
      this.pos += n;
      return b;
    }
    const parts: Buffer[] = [];
    let have = 0;
    while (have < n) {
      if (this.pos >= this.chunk.length && !(await this.fill())) {
        if (have === 0 && eofOk) return null;
        throw this.truncated();
      }
      const take = Math.min(n - have, this.chunk.length - this.pos);
      parts.push(this.chunk.subarray(this.pos, this.pos + take));
      this.pos += take;
      have += take;
    }
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts, n);
  }

  private async skip(n: number): Promise<void> {
    while (n > 0) {
      if (this.pos >= this.chunk.length && !(await this.fill())) throw this.truncated();
      const take = Math.min(n, this.chunk.length - this.pos);
      this.pos += take;
      n -= take;
    }
  }
}

function padding(size: number): number {
  const r = size % BLOCK;
  return r === 0 ? 0 : BLOCK - r;
}

function isZero(b: Buffer): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

/** A NUL-terminated (or full-width) string field. */
function cString(b: Buffer): string {
  const end = b.indexOf(0);
  return b.toString('utf8', 0, end < 0 ? b.length : end);
}

function checkChecksum(block: Buffer, offset: number, r: TarReader): void {
  const want = parseNumeric(block, 148, 8, 'checksum', offset, r);
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const c = i >= 148 && i < 156 ? 0x20 : block[i]!;
    unsigned += c;
    signed += c > 127 ? c - 256 : c;
  }
  // Some historic writers summed signed chars; archive/tar accepts both.
  if (want !== unsigned && want !== signed) throw r.invalid(offset, 'header checksum mismatch');
}

/** Octal (space/NUL padded) or GNU base-256 numbers. */
function parseNumeric(block: Buffer, start: number, len: number, what: string, offset: number, r: TarReader): number {
  const first = block[start]!;
  if (first & 0x80) {
    if (first === 0xff) throw r.invalid(offset, `negative ${what}`);
    let v = first & 0x7f;
    for (let i = start + 1; i < start + len; i++) {
      v = v * 256 + block[i]!;
      if (v > Number.MAX_SAFE_INTEGER) throw r.invalid(offset, `${what} out of range`);
    }
    return v;
  }
  let i = start;
  const end = start + len;
  while (i < end && (block[i] === 0x20 || block[i] === 0)) i++;
  let v = 0;
  while (i < end && block[i]! >= 0x30 && block[i]! <= 0x37) v = v * 8 + (block[i++]! - 0x30);
  while (i < end && (block[i] === 0x20 || block[i] === 0)) i++;
  if (i !== end) throw r.invalid(offset, `invalid ${what} field`);
  return v;
}

/** "LEN key=value\n" records; values stay bytes. Later records win. */
function parsePax(data: Buffer, into: Map<string, Buffer>, offset: number, r: TarReader): void {
  let off = 0;
  while (off < data.length) {
    const sp = data.indexOf(0x20, off);
    if (sp < 0 || sp - off > 20 || sp === off) throw r.invalid(offset, 'malformed PAX record');
    const lenText = data.toString('latin1', off, sp);
    if (!/^\d+$/.test(lenText)) throw r.invalid(offset, 'malformed PAX record length');
    const len = Number(lenText);
    const end = off + len;
    if (len <= sp - off + 1 || end > data.length || data[end - 1] !== 0x0a) throw r.invalid(offset, 'malformed PAX record');
    const rec = data.subarray(sp + 1, end - 1);
    const eq = rec.indexOf(0x3d);
    if (eq <= 0) throw r.invalid(offset, 'malformed PAX record');
    const key = rec.toString('utf8', 0, eq);
    // Copy: the value must not keep the whole header buffer alive.
    into.set(key, Buffer.from(rec.subarray(eq + 1)));
    off = end;
  }
}

/** Global records overridden by local ones; an empty local value deletes (POSIX). */
function mergePax(global: Map<string, Buffer>, local: Map<string, Buffer>): Map<string, Buffer> {
  const out = new Map(global);
  for (const [k, v] of local) {
    if (v.length === 0) out.delete(k);
    else out.set(k, v);
  }
  return out;
}

function mapBytes(m: Map<string, Buffer>): number {
  let n = 0;
  for (const [k, v] of m) n += k.length + v.length;
  return n;
}

function paxInteger(value: string, what: string, h: TarHeader, r: TarReader): number {
  if (!/^\d{1,16}$/.test(value) || !Number.isSafeInteger(Number(value))) throw r.invalid(h.offset, `entry ${quoteName(h.name)} has an invalid PAX ${what}`);
  return Number(value);
}
