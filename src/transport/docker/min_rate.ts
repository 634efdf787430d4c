/**
 * The slowest transfer berth waits for. The idle timeout catches a registry
 * that stops sending; a registry that drips a byte now and then never trips
 * it and would hold a pull (and a boot) forever. So a read that delivers
 * fewer than `bytesPerSecond` on average over `windowMs` fails too (like
 * curl's --speed-limit/--speed-time). Only time the consumer wants data
 * counts: a reader paused by backpressure is not the registry's fault.
 */
import { BerthError } from '../../errors.ts';
import type { MinRate } from '../types.ts';

export type { MinRate };

/** 1 KiB/s over a minute: far below any working link, far above a drip. */
export const DEFAULT_MIN_RATE: MinRate = { bytesPerSecond: 1024, windowMs: 60_000 };

/**
 * Environment variable that sets the floor: "BYTES/SECONDS" (e.g. 1024/60),
 * or "0" for none. The installed command sets it from berth.conf's min-rate
 * (packaging/wrapper.sh), as it sets $BERTH_ROOT from root.
 */
export const MIN_RATE_ENV = 'BERTH_MIN_RATE';

/** The floor from $BERTH_MIN_RATE, else the default; null means no floor. */
export function minRateFromEnv(env: NodeJS.ProcessEnv = process.env): MinRate | null {
  const v = env[MIN_RATE_ENV]?.trim();
  if (v === undefined || v === '') return DEFAULT_MIN_RATE;
  if (v === '0') return null;
  const m = /^(\d{1,12})\/(\d{1,6}(?:\.\d{1,3})?)$/.exec(v);
  if (m === null || Number(m[2]) <= 0) {
    throw new BerthError('USAGE', `${MIN_RATE_ENV}=${JSON.stringify(v.slice(0, 40))} is not BYTES/SECONDS`, {
      hint: `write e.g. ${MIN_RATE_ENV}=1024/60 (at least 1 KiB/s over a minute), or ${MIN_RATE_ENV}=0 for no floor`,
    });
  }
  return { bytesPerSecond: Number(m[1]), windowMs: Number(m[2]) * 1000 };
}

export function formatRate(rate: MinRate): string {
  return `${rate.bytesPerSecond} bytes/s over ${rate.windowMs / 1000}s`;
}

/** The error for a read that stayed below the floor. */
export function tooSlow(what: string, rate: MinRate, bytes: number, elapsedMs: number, where = ''): BerthError {
  return new BerthError('REGISTRY_UNREACHABLE', `${what}: ${bytes} bytes in ${(elapsedMs / 1000).toFixed(1)}s${where}, below the minimum of ${formatRate(rate)}`, {
    hint: `the network or registry is too slow (or dripping on purpose); try again, or lower the floor with min-rate=BYTES/SECONDS in berth.conf or ${MIN_RATE_ENV}`,
  });
}

/**
 * Counts bytes per window while started; calls `onSlow` once when a whole
 * window delivered less than the floor. start() is idempotent (a running
 * window goes on); stop() discards the current window.
 */
export class RateWatch {
  readonly #rate: MinRate | null;
  readonly #onSlow: (bytes: number, elapsedMs: number) => void;
  #timer: NodeJS.Timeout | undefined;
  #windowStart = 0;
  #bytes = 0;

  constructor(rate: MinRate | null, onSlow: (bytes: number, elapsedMs: number) => void) {
    this.#rate = rate;
    this.#onSlow = onSlow;
  }

  start(): void {
    if (this.#rate === null || this.#timer !== undefined) return;
    this.#windowStart = Date.now();
    this.#bytes = 0;
    this.#timer = setTimeout(() => this.#check(), this.#rate.windowMs);
  }

  add(n: number): void {
    this.#bytes += n;
  }

  stop(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #check(): void {
    this.#timer = undefined;
    const rate = this.#rate!;
    const elapsed = Date.now() - this.#windowStart;
    if (this.#bytes < (rate.bytesPerSecond * elapsed) / 1000) {
      this.#onSlow(this.#bytes, elapsed);
      return;
    }
    this.start();
  }
}
