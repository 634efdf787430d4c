/**
 * CVSS v3.0/v3.1 base scores from a vector string, per the FIRST
 * specification (v3.1, section 7: formulas, Roundup; section 5: ratings).
 * Only the base metrics count; temporal and environmental metrics are
 * checked for form and ignored. v3.0 vectors are scored with v3.1's
 * formulas (they differ only in Roundup's floating-point care). A vector
 * that does not parse gives undefined: the caller decides (berth treats
 * the advisory as invalid).
 */
import type { Severity } from './types.ts';

const WEIGHTS = {
  AV: { N: 0.85, A: 0.62, L: 0.55, P: 0.2 },
  AC: { L: 0.77, H: 0.44 },
  PR: { N: 0.85, L: 0.62, H: 0.27 },
  UI: { N: 0.85, R: 0.62 },
  S: { U: 0, C: 1 },
  C: { H: 0.56, L: 0.22, N: 0 },
  I: { H: 0.56, L: 0.22, N: 0 },
  A: { H: 0.56, L: 0.22, N: 0 },
} as const;
type BaseMetric = keyof typeof WEIGHTS;

/** Privileges Required weighs more when the scope changes. */
const PR_CHANGED = { N: 0.85, L: 0.68, H: 0.5 } as const;

/** Temporal and environmental metrics: allowed values, ignored for the base score. */
const OTHER_METRICS: Record<string, readonly string[]> = {
  E: ['X', 'H', 'F', 'P', 'U'],
  RL: ['X', 'U', 'W', 'T', 'O'],
  RC: ['X', 'C', 'R', 'U'],
  CR: ['X', 'H', 'M', 'L'],
  IR: ['X', 'H', 'M', 'L'],
  AR: ['X', 'H', 'M', 'L'],
  MAV: ['X', 'N', 'A', 'L', 'P'],
  MAC: ['X', 'L', 'H'],
  MPR: ['X', 'N', 'L', 'H'],
  MUI: ['X', 'N', 'R'],
  MS: ['X', 'U', 'C'],
  MC: ['X', 'H', 'L', 'N'],
  MI: ['X', 'H', 'L', 'N'],
  MA: ['X', 'H', 'L', 'N'],
};

/** CVSS v3.1 Roundup: the smallest number with one decimal >= x, computed on integers to avoid float error. */
export function roundUp(x: number): number {
  const i = Math.round(x * 100_000);
  return i % 10_000 === 0 ? i / 100_000 : (Math.floor(i / 10_000) + 1) / 10;
}

/** The base score (0.0–10.0) of a "CVSS:3.x/AV:…" vector, or undefined when it is not a valid v3 vector. */
export function cvss3BaseScore(vector: string): number | undefined {
  if (vector.length > 300) return undefined;
  const parts = vector.split('/');
  if (parts[0] !== 'CVSS:3.0' && parts[0] !== 'CVSS:3.1') return undefined;
  const base = new Map<BaseMetric, string>();
  const seen = new Set<string>();
  for (const part of parts.slice(1)) {
    const m = /^([A-Z]{1,3}):([A-Z])$/.exec(part);
    if (!m) return undefined;
    const [, key, value] = m as unknown as [string, string, string];
    if (seen.has(key)) return undefined;
    seen.add(key);
    if (Object.hasOwn(WEIGHTS, key)) {
      if (!Object.hasOwn(WEIGHTS[key as BaseMetric], value)) return undefined;
      base.set(key as BaseMetric, value);
    } else if (!OTHER_METRICS[key]?.includes(value)) {
      return undefined;
    }
  }
  if (base.size !== Object.keys(WEIGHTS).length) return undefined;
  const w = (k: BaseMetric): number => (WEIGHTS[k] as Record<string, number>)[base.get(k)!]!;
  const changed = base.get('S') === 'C';
  const pr = changed ? PR_CHANGED[base.get('PR') as keyof typeof PR_CHANGED] : w('PR');
  const iss = 1 - (1 - w('C')) * (1 - w('I')) * (1 - w('A'));
  const impact = changed ? 7.52 * (iss - 0.029) - 3.25 * Math.pow(iss - 0.02, 15) : 6.42 * iss;
  const exploitability = 8.22 * w('AV') * w('AC') * pr * w('UI');
  if (impact <= 0) return 0;
  return changed ? roundUp(Math.min(1.08 * (impact + exploitability), 10)) : roundUp(Math.min(impact + exploitability, 10));
}

/**
 * The qualitative rating of a score (CVSS v3.1 section 5). "None" (0.0)
 * has no Severity of its own and counts as low: the advisory still names
 * a flaw, and "unknown" is kept for advisories that say nothing.
 */
export function ratingOf(score: number): Severity {
  if (score >= 9) return 'critical';
  if (score >= 7) return 'high';
  if (score >= 4) return 'medium';
  return 'low';
}
