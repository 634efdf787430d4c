/**
 * Hand-made tar blocks for the tar tests (store-tar-reader, tar-differential):
 * headers with any field raw, so that tests can write what no tar writer would.
 */

export interface Raw {
  name: string;
  type?: string;
  /** Numbers are octal; a Buffer is written as is (base-256, garbage). */
  size?: number | Buffer;
  mode?: number | Buffer;
  uid?: number | Buffer;
  gid?: number;
  mtime?: number;
  linkname?: string;
  /** The 8 bytes of magic and version; `v7` leaves them zero. */
  magic?: 'ustar' | 'gnu' | 'v7' | string;
  prefix?: string;
  /** Write the sum of signed bytes (historic writers) instead of unsigned. */
  signedChecksum?: boolean;
}

function octal(n: number, width: number): string {
  return `${n.toString(8).padStart(width - 1, '0')}\0`;
}

function numeric(b: Buffer, v: number | Buffer, at: number, width: number): void {
  if (Buffer.isBuffer(v)) v.copy(b, at, 0, width);
  else b.write(octal(v, width), at, 'latin1');
}

/** One 512-byte header block with a correct checksum. */
export function header(r: Raw): Buffer {
  const b = Buffer.alloc(512);
  b.write(r.name, 0, 100, 'utf8');
  numeric(b, r.mode ?? 0o644, 100, 8);
  numeric(b, r.uid ?? 0, 108, 8);
  numeric(b, r.gid ?? 0, 116, 8);
  numeric(b, r.size ?? 0, 124, 12);
  numeric(b, r.mtime ?? 0, 136, 12);
  b.write(r.type ?? '0', 156, 'latin1');
  b.write(r.linkname ?? '', 157, 100, 'utf8');
  const magic = r.magic ?? 'ustar';
  if (magic === 'ustar') b.write('ustar\x0000', 257, 'latin1');
  else if (magic === 'gnu') b.write('ustar  \0', 257, 'latin1');
  else if (magic !== 'v7') b.write(magic, 257, 8, 'latin1');
  if (r.prefix) b.write(r.prefix, 345, 155, 'utf8');
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (const c of b) sum += r.signedChecksum && c > 127 ? c - 256 : c;
  b.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return b;
}

export function padded(data: Buffer): Buffer {
  return Buffer.concat([data, Buffer.alloc((512 - (data.length % 512)) % 512)]);
}

/** PAX records "LEN key=value\n" with correct lengths. */
export function paxRecords(records: [string, Buffer | string][]): Buffer {
  return Buffer.concat(
    records.map(([k, v]) => {
      const body = Buffer.concat([Buffer.from(` ${k}=`), Buffer.from(v), Buffer.from('\n')]);
      let len = body.length + 1;
      while (String(len).length + body.length !== len) len++;
      return Buffer.concat([Buffer.from(String(len)), body]);
    }),
  );
}

/** An extended header (typeflag x, g, L or K) with `data` as is. */
export function extended(data: Buffer | string, type = 'x'): Buffer {
  const d = Buffer.from(data);
  return Buffer.concat([header({ name: 'PaxHeader', type, size: d.length }), padded(d)]);
}

/** A PAX extended header (typeflag x or g) with raw-byte values. */
export function pax(records: [string, Buffer | string][], type = 'x'): Buffer {
  return extended(paxRecords(records), type);
}

export function file(name: string, content: string | Buffer, extra: Partial<Raw> = {}): Buffer {
  const data = Buffer.from(content);
  return Buffer.concat([header({ name, size: data.length, ...extra }), padded(data)]);
}

/** The end-of-archive marker. */
export const END = Buffer.alloc(1024);
