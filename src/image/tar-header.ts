/**
 * The one tar header decoder. Both tar readers (store/tar-reader.ts, which
 * streams layers into the store, and transport/tarfile/tar_index.ts, which
 * indexes docker-archive and oci-archive files) do their own I/O and hand
 * every block to a TarHeaderDecoder, so an archive cannot be indexed one way
 * and imported another (a parser differential).
 *
 * The contract, one set of rules (close to Go's archive/tar, which Docker,
 * containerd and podman use; stricter where Go is lenient):
 *  - A header's checksum is the sum of its bytes with the checksum field read
 *    as spaces; both the unsigned and the historic signed sum are accepted
 *    (GNU tar and Go do the same).
 *  - Magic: "ustar\0" + "00" (POSIX: the prefix field extends the name),
 *    "ustar " + " \0" (GNU: no prefix), or six zero bytes (v7). Anything else
 *    is refused.
 *  - Numbers are octal (space/NUL padded) or GNU base-256; negative
 *    base-256 numbers are refused.
 *  - Types: regular files ("0", "7", and "\0", a directory when its name ends
 *    in "/"), hard and symbolic links, devices, directories and fifos. Links,
 *    directories, devices and fifos carry no data whatever their size field
 *    says. Sparse files and other types are refused.
 *  - Extended headers: PAX "x" (this entry), GNU "L"/"K" (long name/link).
 *    PAX records override GNU long names, which override header fields. Each
 *    is at most maxExtendedHeaderBytes, and so is their sum for one entry; the
 *    size is checked before anything is read. Records are "LEN key=value\n"
 *    with LEN exactly the record's length; a malformed record, an empty key or
 *    one with a NUL or control byte refuses the archive (never a silent stop).
 *    An empty value deletes the key (POSIX). Used keys: path, linkpath, size,
 *    uid, gid, mtime, SCHILY.xattr.*; GNU.sparse.* is refused; others ignored.
 *  - Global PAX "g" headers are parsed as strictly, but POSIX applies them to
 *    later entries while containerd and podman ignore them, so one that sets
 *    a key we use is refused; others (comment, ...) are ignored.
 *  - End of archive: a zero block followed by a zero block or by the end of
 *    the input. A zero block followed by anything else (data, or a partial
 *    block) is refused: nothing may hide behind a single zero block. The end
 *    of the input at a block boundary between entries is accepted as the end
 *    (as GNU tar and Go do); inside a header, an entry's data or its padding,
 *    or after an extended header, it is refused.
 *
 *  - Names and link targets are decoded as UTF-8 (invalid bytes become
 *    U+FFFD) and not normalised: that is each reader's consumer's job.
 *
 * Every refusal is a BerthError LAYER_INVALID ("<what> is not a valid tar
 * archive: <why> (at byte N)").
 */
import { BerthError } from '../errors.ts';

export const TAR_BLOCK = 512;
export const DEFAULT_MAX_EXTENDED_HEADER_BYTES = 1024 * 1024;

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
  /** From PAX SCHILY.xattr.NAME records, raw values (binary, e.g. security.capability). */
  xattrs: Map<string, Buffer>;
  /** Byte offset of the entry's first header block (extended headers included), for messages. */
  offset: number;
}

/**
 * What the reader does after handing a header block to the decoder:
 * `entry`: the entry's data (header.size bytes, then padding) follows;
 * `extended`: read `size` bytes (then padding) and pass them to extended();
 * `zero`: read the next block and pass it to end();
 * `end`: the archive ended, nothing more is read from it.
 * Readers pass what they could read: a block (or extended header data)
 * cut short by the end of the input, or an empty buffer at the end; the
 * decoder decides what that means.
 */
export type TarStep =
  | { readonly kind: 'entry'; readonly header: TarHeader }
  | { readonly kind: 'extended'; readonly size: number }
  | { readonly kind: 'zero' }
  | { readonly kind: 'end' };

/** Padding after `size` bytes of data up to the next block. */
export function tarPadding(size: number): number {
  const r = size % TAR_BLOCK;
  return r === 0 ? 0 : TAR_BLOCK - r;
}

const HINT = 'the archive is corrupt, truncated or hostile; do not use it';
/** Largest id we accept; 2^32-1 is (uid_t)-1, "no change", never a real owner. */
const MAX_ID = 0xfffffffe;
/** Most xattrs and xattr bytes per entry (Linux: 64 KiB per value, and few per file in practice). */
const MAX_XATTRS = 128;
const MAX_XATTR_BYTES = 256 * 1024;
const XATTR_PREFIX = 'SCHILY.xattr.';
/** Keys a global header may not set (see the contract). */
const USED_KEYS = new Set(['path', 'linkpath', 'size', 'uid', 'gid', 'mtime']);

const TYPES: Readonly<Record<string, TarEntryType>> = {
  '0': 'file',
  '7': 'file',
  '1': 'hardlink',
  '2': 'symlink',
  '3': 'char',
  '4': 'block',
  '5': 'dir',
  '6': 'fifo',
};

/** Extended headers read so far for the next entry. */
interface Pending {
  start: number;
  bytes: number;
  longName?: string;
  longLink?: string;
  pax?: Map<string, Buffer>;
}

export class TarHeaderDecoder {
  #pending: Pending | undefined;
  /** The extended header whose data the reader is to pass to extended(). */
  #awaiting: { type: string; offset: number; size: number } | undefined;
  /** Offset of a zero block whose successor the reader is to pass to end(). */
  #zeroAt: number | undefined;

  /** `what` names the archive in messages ("layer", a file name). */
  constructor(
    readonly what: string,
    private readonly maxExtendedHeaderBytes = DEFAULT_MAX_EXTENDED_HEADER_BYTES,
  ) {}

  invalid(offset: number, why: string): BerthError {
    return new BerthError('LAYER_INVALID', `${this.what} is not a valid tar archive: ${why} (at byte ${offset})`, { hint: HINT });
  }

  /** The input ended inside a header, an extended header, an entry's data or its padding. */
  truncated(offset: number): BerthError {
    return this.invalid(offset, 'it ends in the middle of an entry');
  }

  /** Decode the header block at `offset`. */
  header(block: Buffer, offset: number): TarStep {
    if (this.#awaiting !== undefined || this.#zeroAt !== undefined) throw new Error('tar decoder: header() out of order');
    if (block.length === 0) {
      this.#finish();
      return { kind: 'end' };
    }
    if (block.length !== TAR_BLOCK) throw this.truncated(offset);
    if (isZero(block)) {
      this.#zeroAt = offset;
      return { kind: 'zero' };
    }
    checkChecksum(block, (why) => this.invalid(offset, why));
    const magic = block.toString('latin1', 257, 265);
    const ustar = magic === 'ustar\u000000';
    if (!ustar && magic !== 'ustar  \0' && !isZero(block.subarray(257, 263))) throw this.invalid(offset, 'unknown header format (magic)');
    const flag = String.fromCharCode(block[156]!);
    const size = this.#number(block, 124, 12, 'size', offset);
    if (flag === 'x' || flag === 'g' || flag === 'L' || flag === 'K') {
      const p = flag === 'g' ? undefined : (this.#pending ??= { start: offset, bytes: 0 });
      const total = size + (p?.bytes ?? 0);
      if (size > this.maxExtendedHeaderBytes || total > this.maxExtendedHeaderBytes) {
        throw this.invalid(offset, `extended header of ${size} bytes exceeds the limit of ${this.maxExtendedHeaderBytes}`);
      }
      if (p !== undefined) p.bytes = total;
      this.#awaiting = { type: flag, offset, size };
      return { kind: 'extended', size };
    }
    const p = this.#pending;
    this.#pending = undefined;
    return { kind: 'entry', header: this.#entry(block, flag, size, ustar, p, p?.start ?? offset) };
  }

  /** The data of the extended header just announced. */
  extended(data: Buffer): void {
    const a = this.#awaiting;
    if (a === undefined) throw new Error('tar decoder: extended() out of order');
    this.#awaiting = undefined;
    if (data.length !== a.size) throw this.truncated(a.offset);
    if (a.type === 'g') {
      const global = new Map<string, Buffer>();
      parsePax(data, global, (why) => this.invalid(a.offset, why));
      for (const key of global.keys()) {
        if (USED_KEYS.has(key) || key.startsWith(XATTR_PREFIX) || key.startsWith('GNU.sparse.')) {
          throw this.invalid(a.offset, `a global extended header sets ${JSON.stringify(key.slice(0, 100))}, which readers disagree on`);
        }
      }
      return;
    }
    const p = this.#pending;
    if (p === undefined) throw new Error('tar decoder: no pending entry');
    if (a.type === 'L') p.longName = cString(data);
    else if (a.type === 'K') p.longLink = cString(data);
    else parsePax(data, (p.pax ??= new Map()), (why) => this.invalid(a.offset, why));
  }

  /** After a zero block: the next block (empty when the input ended there). Anything but a zero block is refused. */
  end(next: Buffer): void {
    const at = this.#zeroAt;
    if (at === undefined) throw new Error('tar decoder: end() out of order');
    this.#zeroAt = undefined;
    if (next.length !== 0 && next.length !== TAR_BLOCK) throw this.truncated(at + TAR_BLOCK);
    if (!isZero(next)) throw this.invalid(at, 'a zero block is followed by data');
    this.#finish();
  }

  #finish(): void {
    if (this.#pending !== undefined) throw this.invalid(this.#pending.start, 'an extended header is not followed by an entry');
  }

  #number(block: Buffer, start: number, len: number, what: string, offset: number): number {
    return parseNumeric(block, start, len, what, (why) => this.invalid(offset, why));
  }

  #entry(block: Buffer, flag: string, headerSize: number, ustar: boolean, p: Pending | undefined, offset: number): TarHeader {
    let name = cString(block.subarray(0, 100));
    // Only POSIX ustar has a prefix field; GNU keeps atime/ctime there.
    if (ustar) {
      const prefix = cString(block.subarray(345, 500));
      if (prefix !== '') name = `${prefix}/${name}`;
    }
    const type = flag === '\0' ? (name.endsWith('/') ? 'dir' : 'file') : TYPES[flag];
    if (type === undefined) throw this.invalid(offset, `entry ${quote(name)} has an unsupported type ${JSON.stringify(flag)}`);
    const device = type === 'char' || type === 'block';
    const h: TarHeader = {
      name: p?.longName ?? name,
      type,
      mode: this.#number(block, 100, 8, 'mode', offset) & 0o7777,
      uid: this.#number(block, 108, 8, 'uid', offset),
      gid: this.#number(block, 116, 8, 'gid', offset),
      mtime: this.#number(block, 136, 12, 'mtime', offset),
      size: headerSize,
      linkname: p?.longLink ?? cString(block.subarray(157, 257)),
      devmajor: device ? this.#number(block, 329, 8, 'devmajor', offset) : 0,
      devminor: device ? this.#number(block, 337, 8, 'devminor', offset) : 0,
      xattrs: new Map(),
      offset,
    };
    if (p?.pax !== undefined) this.#applyPax(h, p.pax);
    if (h.uid > MAX_ID || h.gid > MAX_ID) throw this.invalid(offset, `entry ${quote(h.name)} has an invalid owner`);
    // Header-only types: their size field does not announce data (archive/tar).
    if (type !== 'file') h.size = 0;
    return h;
  }

  #applyPax(h: TarHeader, pax: Map<string, Buffer>): void {
    const bad = (what: string) => this.invalid(h.offset, `entry ${quote(h.name)} has an invalid PAX ${what}`);
    let xattrBytes = 0;
    for (const [key, raw] of pax) {
      if (raw.length === 0) continue; // POSIX: an empty value deletes the key, leaving the header field
      if (key.startsWith(XATTR_PREFIX)) {
        const name = key.slice(XATTR_PREFIX.length);
        if (name === '') throw bad('xattr name');
        xattrBytes += name.length + raw.length;
        if (h.xattrs.size >= MAX_XATTRS || xattrBytes > MAX_XATTR_BYTES) throw this.invalid(h.offset, `entry ${quote(h.name)} has too many xattrs`);
        h.xattrs.set(name, raw);
        continue;
      }
      if (key.startsWith('GNU.sparse.')) throw this.invalid(h.offset, `entry ${quote(h.name)} is a sparse file, which is not supported`);
      const value = raw.toString('utf8');
      switch (key) {
        case 'path':
          h.name = value;
          break;
        case 'linkpath':
          h.linkname = value;
          break;
        case 'size':
        case 'uid':
        case 'gid':
          if (!/^\d{1,16}$/.test(value) || !Number.isSafeInteger(Number(value))) throw bad(key);
          h[key] = Number(value);
          break;
        case 'mtime':
          // Fractional seconds are kept (Go accepts any number of digits and truncates).
          if (!/^-?\d{1,15}(\.\d{1,30})?$/.test(value)) throw bad(key);
          h.mtime = Number(value);
          break;
        default:
          // atime, ctime, uname, gname, comment, hdrcharset...: not used
          break;
      }
    }
  }
}

function isZero(b: Buffer): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

/** A short, terminal-safe rendering of an untrusted name for messages. */
function quote(name: string): string {
  return JSON.stringify(name.length > 200 ? `${name.slice(0, 200)}...` : name);
}

/** A NUL-terminated (or full-width) string field; invalid UTF-8 becomes U+FFFD. */
function cString(b: Buffer): string {
  const end = b.indexOf(0);
  return b.toString('utf8', 0, end < 0 ? b.length : end);
}

type Refuse = (why: string) => BerthError;

function checkChecksum(block: Buffer, refuse: Refuse): void {
  const want = parseNumeric(block, 148, 8, 'checksum', refuse);
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < TAR_BLOCK; i++) {
    const c = i >= 148 && i < 156 ? 0x20 : block[i]!;
    unsigned += c;
    signed += c > 127 ? c - 256 : c;
  }
  // Some historic writers summed signed chars; GNU tar and Go accept both.
  if (want !== unsigned && want !== signed) throw refuse('header checksum mismatch');
}

/** Octal (space/NUL padded; all padding is 0) or GNU base-256 numbers. */
function parseNumeric(block: Buffer, start: number, len: number, what: string, refuse: Refuse): number {
  const first = block[start]!;
  if (first & 0x80) {
    // Base-256 is two's complement with the top bit as marker: 0x40 set means negative.
    if (first & 0x40) throw refuse(`negative ${what}`);
    let v = first & 0x3f;
    for (let i = start + 1; i < start + len; i++) {
      v = v * 256 + block[i]!;
      if (v > Number.MAX_SAFE_INTEGER) throw refuse(`${what} out of range`);
    }
    return v;
  }
  let i = start;
  const end = start + len;
  while (i < end && (block[i] === 0x20 || block[i] === 0)) i++;
  let v = 0;
  while (i < end && block[i]! >= 0x30 && block[i]! <= 0x37) v = v * 8 + (block[i++]! - 0x30);
  while (i < end && (block[i] === 0x20 || block[i] === 0)) i++;
  if (i !== end) throw refuse(`invalid ${what} field`);
  return v;
}

/** "LEN key=value\n" records, LEN counting the whole record; values stay bytes. Later records win. */
function parsePax(data: Buffer, into: Map<string, Buffer>, refuse: Refuse): void {
  let off = 0;
  while (off < data.length) {
    const sp = data.indexOf(0x20, off);
    if (sp <= off || sp - off > 16) throw refuse('malformed PAX record length');
    const lenText = data.toString('latin1', off, sp);
    if (!/^[0-9]+$/.test(lenText)) throw refuse('malformed PAX record length');
    const end = off + Number(lenText);
    if (end <= sp + 1 || end > data.length || data[end - 1] !== 0x0a) throw refuse('malformed PAX record');
    const rec = data.subarray(sp + 1, end - 1);
    const eq = rec.indexOf(0x3d);
    if (eq < 0) throw refuse('malformed PAX record');
    const key = rec.subarray(0, eq);
    if (key.length === 0 || key.some((c) => c < 0x20 || c === 0x7f)) throw refuse('a PAX record has an invalid key');
    // Copy: the value must not keep the whole header buffer alive.
    into.set(key.toString('utf8'), Buffer.from(rec.subarray(eq + 1)));
    off = end;
  }
}
