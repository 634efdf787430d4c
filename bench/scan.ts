/**
 * berth scan's cost, in process, on this machine: the package inventory of
 * a rootfs (default: this host's, read as an image's) next to dpkg-query
 * listing the same database, and the whole scanRootfs with a synthetic OSV
 * database of N Debian advisories (one in ten naming an installed source
 * package), so that loading and matching are what is measured. Medians
 * after one warm-up call each (warm page cache). Not a test.
 *
 * Part of `npm run bench` (bench/run.ts, section 8); also runs alone and
 * prints the medians and the machine's load:
 *
 *   node --import tsx bench/scan.ts [--rootfs DIR] [--advisories N] [--runs N]
 */
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { scanRootfs } from '../src/scan/index.ts';
import { readInventory } from '../src/scan/inventory.ts';
import { median, msOf } from './measure.ts';

export interface ScanBench {
  /** The rootfs whose package databases are read (e.g. "/"). */
  rootfs: string;
  /** Synthetic OSV advisories written for scanRootfs. */
  advisories: number;
  runs: number;
  /** Scratch directory for the OSV database (made if missing; its osv/ is removed afterwards). */
  work: string;
  log: (msg: string) => void;
}

export interface ScanResult {
  packages: number;
  databases: string[];
  advisories: number;
  findings: number;
  /** Milliseconds per run (after a warm-up call). */
  inventoryMs: number[];
  dpkgQueryMs: number[];
  scanMs: number[];
}

async function runsMs(runs: number, fn: () => Promise<unknown>): Promise<number[]> {
  await fn(); // warm-up: JIT, page cache
  const xs: number[] = [];
  for (let i = 0; i < runs; i++) xs.push(await msOf(fn));
  return xs;
}

export async function scanCosts(b: ScanBench): Promise<ScanResult> {
  const inventory = await readInventory(b.rootfs);
  const sources = [...new Set(inventory.packages.map((p) => p.source ?? p.name))];
  const eco = inventory.packages[0]?.ecosystem ?? 'Debian:12';
  const osv = path.join(b.work, 'osv');
  await mkdir(osv, { recursive: true });
  try {
    b.log(`scan: writing ${b.advisories} synthetic OSV advisories`);
    for (let i = 0; i < b.advisories; i++) {
      const name = i % 10 === 0 && sources.length > 0 ? sources[(i / 10) % sources.length]! : `not-installed-${i}`;
      const doc = {
        id: `BENCH-${i}`,
        modified: '2026-01-01T00:00:00Z',
        summary: `synthetic advisory ${i}`,
        severity: [{ type: 'CVSS_V3', score: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:H/I:N/A:N' }],
        affected: [{ package: { ecosystem: eco, name }, ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }, { fixed: '0.0.1-1' }] }], ecosystem_specific: { urgency: 'low' } }],
      };
      await writeFile(path.join(osv, `BENCH-${i}.json`), JSON.stringify(doc));
    }
    b.log(`scan: inventory of ${b.rootfs} (${inventory.packages.length} packages), dpkg-query -W, scanRootfs; ${b.runs} runs each`);
    const inventoryMs = await runsMs(b.runs, () => readInventory(b.rootfs));
    const dpkgQueryMs = await runsMs(b.runs, async () => spawnSync('dpkg-query', [`--admindir=${path.join(b.rootfs, 'var/lib/dpkg')}`, '-W'], { stdio: 'ignore' }));
    let findings = 0;
    const scanMs = await runsMs(b.runs, async () => {
      findings = (await scanRootfs(b.rootfs, { blockAt: 'critical', allow: [], osvDir: osv, hooks: [] })).findings.length;
    });
    return { packages: inventory.packages.length, databases: inventory.databases, advisories: b.advisories, findings, inventoryMs, dpkgQueryMs, scanMs };
  } finally {
    await rm(osv, { recursive: true, force: true });
  }
}

/** Rows for bench/run.ts's table and for the stand-alone run. */
export function describeScan(r: ScanResult): { what: string; ms: number[]; note: string }[] {
  return [
    { what: '**berth inventory** (`readInventory`: the dpkg status database and the others it knows, in process)', ms: r.inventoryMs, note: `${r.packages} packages (${r.databases.join(', ') || 'no database'})` },
    { what: '`dpkg-query -W` (a process listing the same dpkg database)', ms: r.dpkgQueryMs, note: 'process start included' },
    { what: '`scanRootfs` (inventory + OSV matching + SBOM, in process)', ms: r.scanMs, note: `${r.advisories} synthetic advisories, ${r.findings} findings` },
  ];
}

/** Stand-alone: prints the medians. */
async function main(): Promise<void> {
  const { values: opts } = parseArgs({ options: { rootfs: { type: 'string', default: '/' }, advisories: { type: 'string', default: '20000' }, runs: { type: 'string', default: '5' } } });
  const work = await mkdtemp(path.join(os.tmpdir(), 'berth-bench-scan-'));
  try {
    const r = await scanCosts({ rootfs: opts.rootfs!, advisories: Math.max(1, Number(opts.advisories)), runs: Math.max(1, Number(opts.runs)), work, log: (m) => process.stderr.write(`[bench:scan] ${m}\n`) });
    const [l1, l5] = os.loadavg();
    process.stdout.write(
      [
        `rootfs ${opts.rootfs}: ${r.packages} packages (${r.databases.join(', ') || 'no database'}); ${r.advisories} advisories; ${r.inventoryMs.length} runs, medians; ${os.cpus().length} CPUs, load ${l1!.toFixed(2)}/${l5!.toFixed(2)}`,
        `inventory (berth readInventory)          ${median(r.inventoryMs).toFixed(1)} ms`,
        `inventory (dpkg-query -W, process)       ${median(r.dpkgQueryMs).toFixed(1)} ms`,
        `scanRootfs (inventory + OSV + SBOM)      ${median(r.scanMs).toFixed(1)} ms  (${r.findings} findings)`,
        '',
      ].join('\n'),
    );
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((e: unknown) => {
    process.stderr.write(`${(e as Error).stack ?? e}\n`);
    process.exit(1);
  });
}
