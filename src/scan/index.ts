/**
 * Scanning an exploded image (a rootfs directory): package inventory,
 * CycloneDX SBOM, OSV advisory matching, external hooks, and the policy's
 * verdict. What berth scan and the publisher call. Modules:
 * rootfs.ts (reading the untrusted tree) -> inventory.ts (dpkg, apk,
 * os-release) ; version.ts (dpkg and apk ordering) -> osv.ts (advisory
 * database, matching, severity; cvss.ts) ; hooks.ts ; policy.ts ; sbom.ts.
 * The contract for hooks and the policy's rules are in docs/scanning.md.
 */
import { createRequire } from 'node:module';
import fs from 'node:fs/promises';
import { BerthError } from '../errors.ts';
import { DEFAULT_HOOK_OPTIONS, runHook } from './hooks.ts';
import { readInventory } from './inventory.ts';
import { loadOsvDatabase, matchPackages } from './osv.ts';
import { applyPolicy } from './policy.ts';
import { cycloneDx, type SbomSubject } from './sbom.ts';
import type { Finding, ScanPolicy, ScanReport } from './types.ts';

export type { Finding, InstalledPackage, ScanPolicy, ScanReport, Severity } from './types.ts';
export { SEVERITIES, isSeverity } from './policy.ts';
export type { SbomSubject } from './sbom.ts';

const { version } = createRequire(import.meta.url)('../../package.json') as { version: string };

/**
 * Scan the rootfs at `rootfs` under `policy`. Resolves to a report whose
 * verdict is 'approve' or 'block'; rejects (BerthError, SCAN_FAILED or
 * UNSAFE_PATH) when the scan cannot be completed: an unreadable or hostile
 * package database, a broken advisory database, a failed hook. A rejection
 * must be treated as a block (fail closed). `subject` names the image in
 * the SBOM and the report.
 */
export async function scanRootfs(rootfs: string, policy: ScanPolicy, subject: SbomSubject = {}): Promise<ScanReport> {
  const st = await fs.stat(rootfs).catch(() => undefined);
  if (!st?.isDirectory()) throw new BerthError('SCAN_FAILED', `${rootfs} is not a directory`, { hint: 'give the root directory of an image' });
  const inventory = await readInventory(rootfs);
  const findings: Finding[] = [];
  if (policy.osvDir !== undefined) {
    const db = await loadOsvDatabase(policy.osvDir);
    findings.push(...matchPackages(db, inventory.packages));
  }
  for (const hook of policy.hooks) {
    findings.push(...(await runHook(hook, rootfs, { ...DEFAULT_HOOK_OPTIONS, ...(policy.hookTimeoutMs === undefined ? {} : { timeoutMs: policy.hookTimeoutMs }) })));
  }
  const verdict = applyPolicy(findings, policy, inventory.unscanned);
  return {
    ...(subject.digest === undefined ? {} : { digest: subject.digest }),
    packages: inventory.packages,
    findings: verdict.findings,
    verdict: verdict.verdict,
    reasons: verdict.reasons,
    unscanned: inventory.unscanned,
    sbom: cycloneDx(inventory.packages, inventory.os, subject, version),
  };
}
