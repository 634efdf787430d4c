/**
 * berth scan's cost, in process, on this machine: the package inventory of
 * a rootfs (default: this host's, read as an image's) next to dpkg-query
 * listing the same database, and the whole scanRootfs with a synthetic OSV
 * database of N Debian advisories (one in ten naming an installed source
 * package), so that loading and matching are what is measured. Prints
 * medians and the machine's load. Not a test; not part of bench/run.ts's
 * table (docs/performance.md) yet.
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

const { values: opts } = parseArgs({ options: { rootfs: { type: 'string', default: '/' }, advisories: { type: 'string', default: '20000' }, runs: { type: 'string', default: '5' } } });
const RUNS = Math.max(1, Number(opts.runs));
const N = Math.max(1, Number(opts.advisories));
const rootfs = opts.rootfs!;

async function medianMs(fn: () => Promise<unknown>): Promise<number> {
  await fn(); // warm-up: JIT, page cache
  const xs: number[] = [];
  for (let i = 0; i < RUNS; i++) xs.push(await msOf(fn));
  return median(xs);
}

const work = await mkdtemp(path.join(os.tmpdir(), 'berth-bench-scan-'));
try {
  const inventory = await readInventory(rootfs);
  const sources = [...new Set(inventory.packages.map((p) => p.source ?? p.name))];
  const eco = inventory.packages[0]?.ecosystem ?? 'Debian:12';
  const osv = path.join(work, 'osv');
  await mkdir(osv);
  for (let i = 0; i < N; i++) {
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

  const inv = await medianMs(() => readInventory(rootfs));
  const dpkgQuery = await medianMs(async () => spawnSync('dpkg-query', [`--admindir=${path.join(rootfs, 'var/lib/dpkg')}`, '-W'], { stdio: 'ignore' }));
  let findings = 0;
  const full = await medianMs(async () => {
    findings = (await scanRootfs(rootfs, { blockAt: 'critical', allow: [], osvDir: osv, hooks: [] })).findings.length;
  });
  const [l1, l5] = os.loadavg();
  process.stdout.write(
    [
      `rootfs ${rootfs}: ${inventory.packages.length} packages (${inventory.databases.join(', ') || 'no database'}); ${N} advisories; ${RUNS} runs, medians; ${os.cpus().length} CPUs, load ${l1!.toFixed(2)}/${l5!.toFixed(2)}`,
      `inventory (berth readInventory)          ${inv.toFixed(1)} ms`,
      `inventory (dpkg-query -W, process)       ${dpkgQuery.toFixed(1)} ms`,
      `scanRootfs (inventory + OSV + SBOM)      ${full.toFixed(1)} ms  (${findings} findings)`,
      '',
    ].join('\n'),
  );
} finally {
  await rm(work, { recursive: true, force: true });
}
