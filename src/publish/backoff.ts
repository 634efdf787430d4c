/**
 * When the publisher polls a repository next: every `interval` seconds while
 * polls succeed; after failures the wait doubles, up to `max`. Pure.
 */

/** Seconds until the next poll after `failures` failed polls in a row (0: the last one worked). */
export function pollDelay(interval: number, max: number, failures: number): number {
  if (failures <= 0) return interval;
  // 2^failures would overflow long before anyone waits that long: cap the exponent.
  const grown = interval * 2 ** Math.min(failures, 30);
  return Math.max(interval, Math.min(grown, max));
}
