/**
 * The scan policy: findings at or above `blockAt` block, unless the
 * allow-list names the finding's id or one of its aliases (then the finding
 * is kept, marked allowed, and never blocks). Severities order
 * unknown < low < medium < high < critical, so `blockAt: 'unknown'` blocks
 * on every finding that is not allowed. With `blockUnscanned`, a package
 * database berth does not read (rpm) blocks too.
 */
import { severityRank } from './osv.ts';
import type { Finding, ScanPolicy, Severity } from './types.ts';

export const SEVERITIES: readonly Severity[] = ['unknown', 'low', 'medium', 'high', 'critical'];

export function isSeverity(s: string): s is Severity {
  return (SEVERITIES as readonly string[]).includes(s);
}

export interface Verdict {
  findings: Finding[];
  verdict: 'approve' | 'block';
  reasons: string[];
}

export function applyPolicy(findings: readonly Finding[], policy: Pick<ScanPolicy, 'blockAt' | 'allow' | 'blockUnscanned'>, unscanned: readonly string[] = []): Verdict {
  const allow = new Set(policy.allow);
  const marked = findings.map((f) => ({ ...f, allowed: allow.has(f.id) || f.aliases.some((a) => allow.has(a)) }));
  const reasons: string[] = [];
  // One reason per advisory: its id, severity and the packages it hits.
  const blocking = new Map<string, { severity: Severity; hits: string[] }>();
  if (policy.blockAt !== undefined) {
    const threshold = severityRank(policy.blockAt);
    for (const f of marked) {
      if (f.allowed || severityRank(f.severity) < threshold) continue;
      const hit = `${f.package} ${f.installed}${f.fixed === undefined ? '' : ` (fixed in ${f.fixed})`}`;
      const entry = blocking.get(f.id);
      if (entry === undefined) blocking.set(f.id, { severity: f.severity, hits: [hit] });
      else {
        if (severityRank(f.severity) > severityRank(entry.severity)) entry.severity = f.severity;
        entry.hits.push(hit);
      }
    }
  }
  for (const [id, { severity, hits }] of blocking) {
    const shown = hits.length > 3 ? `${hits.slice(0, 3).join(', ')} and ${hits.length - 3} more` : hits.join(', ');
    reasons.push(`${id} (${severity}) in ${shown}`);
  }
  if (policy.blockUnscanned === true) for (const u of unscanned) reasons.push(`not scanned: ${u}`);
  if (reasons.length > 0) return { findings: marked, verdict: 'block', reasons };
  const allowed = marked.filter((f) => f.allowed).length;
  const approve =
    policy.blockAt === undefined
      ? `no severity blocks (no block-at level set); ${marked.length} finding(s)`
      : `no finding at or above ${policy.blockAt}${allowed > 0 ? ` that is not allowed (${allowed} allowed)` : ''}`;
  reasons.push(approve);
  for (const u of unscanned) reasons.push(`not scanned: ${u}`);
  return { findings: marked, verdict: 'approve', reasons };
}
