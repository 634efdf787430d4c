/**
 * A blob download that survives dropped connections: when the body ends
 * early, errors, stalls or drips below the minimum rate, it asks again from the first missing byte with
 * `Range: bytes=N-` (a bounded number of times). A 206 must start exactly at
 * N; a 200 (a server that ignores Range) is read from the start again and
 * the bytes already delivered are skipped. The bytes stay unverified: the
 * consumer's digest check covers the joined stream as a whole.
 */
import type { IncomingMessage } from 'node:http';
import { finished, Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { BerthError } from '../../errors.ts';
import { DEFAULT_MIN_RATE, RateWatch, tooSlow, type MinRate } from './min_rate.ts';

/** Opens the blob from `offset` (sending Range when offset > 0); rejects on 4xx/5xx. */
export type BlobOpener = (offset: number) => Promise<IncomingMessage>;

export interface ResumableBlobOptions {
  /** Declared size of the whole blob. */
  size: number;
  /** Where the first response starts. */
  offset: number;
  /** Continuations after the first response. */
  resumeAttempts: number;
  idleTimeoutMs: number;
  /** The slowest transfer accepted (null: none; default DEFAULT_MIN_RATE). */
  minRate?: MinRate | null;
  /** Wait before a continuation (doubled each time, at most 2 s). */
  backoffMs: number;
  /** For messages: "blob sha256:... of docker://...". */
  what: string;
}

export const DEFAULT_RESUME_ATTEMPTS = 3;

export class ResumableBlobStream extends Readable {
  readonly #open: BlobOpener;
  readonly #o: ResumableBlobOptions;
  /** Absolute position of the next byte to deliver. */
  #offset: number;
  /** Absolute position of the current response's next byte. */
  #pos = 0;
  #res: IncomingMessage | undefined;
  #resumes = 0;
  #timer: NodeJS.Timeout | undefined;
  readonly #rate: RateWatch;
  #reopening = false;

  constructor(open: BlobOpener, first: IncomingMessage, options: ResumableBlobOptions) {
    super();
    this.#open = open;
    this.#o = options;
    this.#offset = options.offset;
    const minRate = options.minRate === undefined ? DEFAULT_MIN_RATE : options.minRate;
    this.#rate = new RateWatch(minRate, (bytes, elapsedMs) => {
      this.#res?.destroy(tooSlow(options.what, minRate!, bytes, elapsedMs, ` after ${this.#offset} of ${options.size} bytes`));
    });
    try {
      this.#attach(first);
    } catch (e) {
      first.destroy();
      throw e;
    }
  }

  /** How many times the download was continued. */
  get resumes(): number {
    return this.#resumes;
  }

  override _read(): void {
    if (this.#res !== undefined) {
      this.#res.resume();
      this.#arm();
    }
  }

  override _destroy(e: Error | null, done: (e?: Error | null) => void): void {
    this.#disarm();
    this.#res?.destroy();
    this.#res = undefined;
    done(e);
  }

  #attach(res: IncomingMessage): void {
    this.#pos = this.#startOf(res);
    // This stream's own timer measures stalls only while data is wanted.
    res.socket?.setTimeout(0);
    this.#res = res;
    res.on('data', (chunk: Buffer) => {
      if (this.#res !== res) return;
      this.#rate.add(chunk.length);
      let c = chunk;
      if (this.#pos < this.#offset) {
        // A 200 after a drop: skip what was delivered already.
        const skip = Math.min(c.length, this.#offset - this.#pos);
        c = c.subarray(skip);
        this.#pos += skip;
      }
      this.#pos += c.length;
      this.#offset += c.length;
      this.#arm();
      if (c.length > 0 && !this.push(c)) {
        res.pause();
        this.#disarm();
      }
    });
    finished(res, (err) => {
      if (this.#res !== res) return;
      this.#disarm();
      this.#res = undefined;
      if (this.destroyed) return;
      if (this.#offset >= this.#o.size) {
        // Complete (or longer than declared: the digest check will say so).
        this.push(null);
        return;
      }
      this.#dropped(err ?? new Error(`the response ended after ${this.#offset} of ${this.#o.size} bytes`));
    });
    this.#arm();
  }

  /** Where `res` starts; throws when it is not the continuation asked for. */
  #startOf(res: IncomingMessage): number {
    if (res.statusCode === 200) return 0;
    if (res.statusCode === 206) {
      const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(String(res.headers['content-range'] ?? '').trim());
      const start = m ? Number(m[1]) : NaN;
      const total = m && m[3] !== '*' ? Number(m[3]) : undefined;
      if (start !== this.#offset || (total !== undefined && total !== this.#o.size)) {
        throw new BerthError('REGISTRY_ERROR', `${this.#o.what}: asked for bytes from ${this.#offset}, got Content-Range ${JSON.stringify(String(res.headers['content-range'] ?? '').slice(0, 80))}`, {
          hint: 'the registry answered a range request wrongly; try again',
        });
      }
      return start;
    }
    throw new BerthError('REGISTRY_ERROR', `${this.#o.what}: unexpected status ${res.statusCode} for a blob`, { hint: 'the registry failed; try again later' });
  }

  /** Watch for a stall (restarted by every chunk) and for a drip (a window goes on). */
  #arm(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    const res = this.#res;
    if (res === undefined) return;
    this.#rate.start();
    this.#timer = setTimeout(() => {
      res.destroy(new BerthError('REGISTRY_UNREACHABLE', `${this.#o.what}: no data for ${this.#o.idleTimeoutMs / 1000}s after ${this.#offset} of ${this.#o.size} bytes`, {
        hint: 'the network or registry stalled; try again',
      }));
    }, this.#o.idleTimeoutMs);
  }

  #disarm(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#rate.stop();
  }

  #dropped(cause: Error): void {
    if (this.#reopening) return;
    if (this.#resumes >= this.#o.resumeAttempts) {
      this.destroy(
        cause instanceof BerthError && this.#resumes === 0 ? cause
        : new BerthError('REGISTRY_UNREACHABLE', `${this.#o.what}: download broke off after ${this.#offset} of ${this.#o.size} bytes${this.#resumes ? ` (continued ${this.#resumes} time(s))` : ''}: ${cause.message}`, {
          hint: 'the network or registry is unreliable; try again',
          cause,
        }),
      );
      return;
    }
    this.#resumes++;
    this.#reopening = true;
    void (async () => {
      try {
        await sleep(Math.min(this.#o.backoffMs * 2 ** (this.#resumes - 1), 2_000));
        if (this.destroyed) return;
        const res = await this.#open(this.#offset);
        if (this.destroyed) {
          res.destroy();
          return;
        }
        this.#reopening = false;
        try {
          this.#attach(res);
        } catch (e) {
          res.destroy();
          throw e;
        }
      } catch (e) {
        this.#reopening = false;
        if (!this.destroyed) this.destroy(e as Error);
      }
    })();
  }
}
