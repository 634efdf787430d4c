/**
 * When and how long to wait before trying a registry request again: 5xx and
 * 429 answers and transient network errors, with exponential backoff (plus a
 * little jitter) or the server's Retry-After, always bounded.
 */
import { errnoCode } from '../../errors.ts';
import type { RetryPolicy } from '../types.ts';

export const DEFAULT_RETRY: RetryPolicy = { attempts: 4, baseDelayMs: 500, maxDelayMs: 10_000 };

export function retryPolicy(overrides: Partial<RetryPolicy> | undefined): RetryPolicy {
  const p = { ...DEFAULT_RETRY, ...overrides };
  return {
    attempts: Math.max(1, Math.floor(p.attempts)),
    baseDelayMs: Math.max(0, p.baseDelayMs),
    maxDelayMs: Math.max(0, p.maxDelayMs),
  };
}

/** Statuses worth another try: the server is overloaded or briefly broken. */
export function isRetryableStatus(status: number | undefined): boolean {
  return status === 429 || status === 408 || status === 500 || status === 502 || status === 503 || status === 504;
}

/** Network failures that a second try may not meet (a refused connection or unknown host fails fast instead). */
export function isTransientNetworkError(e: unknown): boolean {
  const code = errnoCode(e);
  return code === 'ECONNRESET' || code === 'ETIMEDOUT' || code === 'EPIPE' || code === 'ECONNABORTED' || code === 'EAI_AGAIN' || code === 'UND_ERR_SOCKET';
}

/** Retry-After as milliseconds from `now`: delta-seconds or an HTTP-date. */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (/^\d{1,10}$/.test(v)) return Number(v) * 1000;
  const t = Date.parse(v);
  if (Number.isNaN(t)) return undefined;
  return Math.max(0, t - now);
}

/** The wait before retry number `retry` (1 for the first retry). */
export function retryDelay(policy: RetryPolicy, retry: number, retryAfter: string | undefined, now = Date.now()): number {
  const told = parseRetryAfter(retryAfter, now);
  if (told !== undefined) return Math.min(told, policy.maxDelayMs);
  const exp = policy.baseDelayMs * 2 ** Math.max(0, retry - 1);
  // Up to 10% jitter so that many clients do not retry in lockstep.
  return Math.min(exp + Math.random() * exp * 0.1, policy.maxDelayMs);
}
