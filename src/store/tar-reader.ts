/**
 * A pull-based reader for untrusted tar streams, written for the store
 * rather than reusing tar-stream because the store needs:
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
 * Every header decision (format, extended headers, the end of the archive)
 * is image/tar-header.ts's, shared with the archive index of the transports;
 * this file only moves bytes.
 */
import { TAR_BLOCK, TarHeaderDecoder, tarPadding, type TarHeader } from '../image/tar-header.ts';
import { layerInvalid } from './secure-path.ts';

export interface TarLimits {
  /** Most bytes read from the source in total, trailing data included. */
  maxBytes: number;
  /** Largest extended header (PAX or GNU long name) accepted, and largest sum of them for one entry. */
  maxExtendedHeaderBytes: number;
}

const EMPTY = Buffer.alloc(0);

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
  private readonly decoder: TarHeaderDecoder;
  /** Set when the source itself failed; importers rethrow it as is. */
  upstreamError: { error: unknown } | undefined;

  constructor(
    source: AsyncIterable<unknown>,
    private readonly limits: TarLimits,
  ) {
    this.it = source[Symbol.asyncIterator]();
    this.decoder = new TarHeaderDecoder('layer', limits.maxExtendedHeaderBytes);
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
    for (;;) {
      const offset = this.offset();
      const step = this.decoder.header(await this.read(TAR_BLOCK), offset);
      if (step.kind === 'zero') this.decoder.end(await this.read(TAR_BLOCK));
      if (step.kind === 'zero' || step.kind === 'end') {
        this.ended = true;
        return null;
      }
      if (step.kind === 'extended') {
        this.checkBudget(step.size, offset);
        this.decoder.extended(await this.read(step.size));
        await this.skip(tarPadding(step.size));
        continue;
      }
      const h = step.header;
      this.checkBudget(h.size, h.offset);
      this.dataLeft = h.size;
      this.padLeft = tarPadding(h.size);
      return h;
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

  private checkBudget(size: number, offset: number): void {
    if (size > this.limits.maxBytes - this.consumed + this.buffered()) {
      throw layerInvalid(`layer is larger than the limit of ${this.limits.maxBytes} bytes (an entry at byte ${offset} declares ${size} bytes)`);
    }
  }

  private truncated(): Error {
    return this.decoder.truncated(this.consumed);
  }

  /** Where the next unread byte is in the stream. */
  private offset(): number {
    return this.consumed - this.buffered();
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

  /** `n` bytes, fewer only where the source ends (copied only when they span chunks). */
  private async read(n: number): Promise<Buffer> {
    if (this.chunk.length - this.pos >= n) {
      const b = this.chunk.subarray(this.pos, this.pos + n);
      this.pos += n;
      return b;
    }
    const parts: Buffer[] = [];
    let have = 0;
    while (have < n && (this.pos < this.chunk.length || (await this.fill()))) {
      const take = Math.min(n - have, this.chunk.length - this.pos);
      parts.push(this.chunk.subarray(this.pos, this.pos + take));
      this.pos += take;
      have += take;
    }
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts, have);
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
