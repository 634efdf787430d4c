/**
 * The systemd backend against runc, inside a real systemd test host:
 *  - install to active: `berth install --runtime runc|systemd` of an image
 *    the store already holds (checkout, render, unit, start until active),
 *    interleaved rounds, each container uninstalled again before the next;
 *  - memory per container: N containers of each backend running at once;
 *    for each, the proportional set size (Pss, /proc/PID/smaps_rollup) of
 *    every process in its unit's cgroup, and the processes counted (runc
 *    leaves none of its own once the container runs: the difference is the
 *    container's init and what the kernel keeps per namespace, not a daemon).
 *
 * Part of `npm run bench` (bench/run.ts, section 6); also runs alone with a
 * small busybox image:
 *
 *   node --import tsx bench/runtimes.ts [--runs N] [--containers N]
 */
import { mkdirSync, rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { TestHost } from '../test/harness/test-host.ts';
import { berthIn, inHost, writePolicy } from './install.ts';
import { berthArgv } from './berth-argv.ts';
import { median, timed, type Sample } from './measure.ts';

export const BACKENDS = ['runc', 'systemd'] as const;
export type Backend = (typeof BACKENDS)[number];

export interface RuntimesBench {
  host: TestHost;
  /** Scratch directory (made if missing), visible inside the test host (under /tmp). */
  work: string;
  berthBin: string;
  /** docker://… reference of an image whose command keeps running. */
  ref: string;
  runs: number;
  /** Containers of each backend running at once for the memory figures. */
  count: number;
  log: (msg: string) => void;
}

export interface BackendMemory {
  /** Pss of all the processes of one container's cgroup, KiB: the median over containers. */
  pssKb: number;
  /** Their sum over the N containers, KiB. */
  totalPssKb: number;
  /** Processes in one container's cgroup (median). */
  processes: number;
}

export interface RuntimesResult {
  installs: Record<Backend, Sample[]>;
  memory: Record<Backend, BackendMemory>;
  count: number;
}

/** Pss (KiB) and count of the processes of `unit`'s cgroup and the cgroups below it. */
async function unitPss(host: TestHost, unit: string): Promise<{ pssKb: number; processes: number }> {
  const cgroup = await host.unitProperty(unit, 'ControlGroup');
  const script = `for d in /sys/fs/cgroup/systemd /sys/fs/cgroup/unified /sys/fs/cgroup; do
  if [ -e "$d$1/cgroup.procs" ]; then find "$d$1" -name cgroup.procs -exec cat {} + | sort -u | while read p; do
    awk -v p="$p" '/^Pss:/ { print p, $2 }' /proc/$p/smaps_rollup 2>/dev/null; done; break; fi; done`;
  const r = await host.exec('sh', ['-c', script, 'sh', cgroup]);
  const lines = r.stdout.trim().split('\n').filter((l) => l !== '');
  if (lines.length === 0) throw new Error(`${unit}: no process in ${cgroup}`);
  return { pssKb: lines.reduce((n, l) => n + Number(l.split(' ')[1]), 0), processes: lines.length };
}

export async function runtimeBackends(b: RuntimesBench): Promise<RuntimesResult> {
  const { host, work, runs, count } = b;
  mkdirSync(work, { recursive: true });
  const root = path.join(work, 'root');
  const policy = writePolicy(work);
  const run = inHost(host);
  b.log('runtimes: pulling the image once');
  await berthIn(host, b.berthBin, root, '--quiet', 'pull', '--policy', policy, '--tls-verify=false', b.ref);
  const install = (name: string, backend: Backend) => [...berthArgv(b.berthBin), '--root', root, '--quiet', 'install', '--policy', policy, '--tls-verify=false', '--pull', 'never', '--runtime', backend, '--name', name, b.ref];

  const installs: Record<Backend, Sample[]> = { runc: [], systemd: [] };
  for (let r = 1; r <= runs; r++) {
    for (const backend of r % 2 ? BACKENDS : [...BACKENDS].reverse()) {
      b.log(`runtimes: install to active, round ${r}/${runs}, --runtime ${backend}`);
      const name = `rt-${backend}`;
      installs[backend].push(await timed(work, process.execPath, install(name, backend), { runner: run }));
      const state = await host.unitProperty(`${name}.service`, 'ActiveState');
      if (state !== 'active') throw new Error(`${name}.service is ${state} after berth install`);
      await berthIn(host, b.berthBin, root, '--quiet', 'uninstall', name);
    }
  }

  const memory = {} as Record<Backend, BackendMemory>;
  for (const backend of BACKENDS) {
    b.log(`runtimes: ${count} containers with --runtime ${backend}, all running`);
    const names = Array.from({ length: count }, (_, i) => `mem-${backend}-${i + 1}`);
    for (const name of names) await berthIn(host, b.berthBin, root, '--quiet', 'install', '--policy', policy, '--tls-verify=false', '--pull', 'never', '--runtime', backend, '--name', name, b.ref);
    const each = [];
    for (const name of names) each.push(await unitPss(host, `${name}.service`));
    memory[backend] = {
      pssKb: median(each.map((e) => e.pssKb)),
      totalPssKb: each.reduce((n, e) => n + e.pssKb, 0),
      processes: median(each.map((e) => e.processes)),
    };
    for (const name of names) await berthIn(host, b.berthBin, root, '--quiet', 'uninstall', name);
  }
  rmSync(root, { recursive: true, force: true });
  return { installs, memory, count };
}

/** Rows for bench/run.ts's table and for the stand-alone run. */
export function describeRuntimes(r: RuntimesResult): { what: string; samples?: Sample[]; text?: string }[] {
  const kb = (n: number) => `${(n / 1024).toFixed(2)} MiB`;
  return [
    { what: '`berth install --runtime runc` (image in the store: checkout, render, start until active)', samples: r.installs.runc },
    { what: '`berth install --runtime systemd` (the same, systemd runs the process in RootDirectory=)', samples: r.installs.systemd },
    ...BACKENDS.map((k) => ({
      what: `memory per container, --runtime ${k} (${r.count} running; Pss of every process of the unit's cgroup)`,
      text: `${kb(r.memory[k].pssKb)} per container (median), ${kb(r.memory[k].totalPssKb)} for ${r.count}; ${r.memory[k].processes} processes each`,
    })),
  ];
}

/** Stand-alone: a small busybox image, a registry, a test host; prints a table. */
async function main(): Promise<void> {
  const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' }, containers: { type: 'string', default: '10' } } });
  const { TestHost } = await import('../test/harness/test-host.ts');
  const { TestRegistry } = await import('../test/harness/registry.ts');
  const { buildImage, pushImage } = await import('../test/fixtures/oci-image.ts');
  const work = await mkdtemp(path.join(os.tmpdir(), 'berth-bench-runtimes-'));
  const log = (m: string) => process.stderr.write(`[bench] ${m}\n`);
  let host: TestHost | undefined;
  let registry: Awaited<ReturnType<typeof TestRegistry.start>> | undefined;
  try {
    [host, registry] = await Promise.all([TestHost.start(), TestRegistry.start()]);
    const layout = path.join(work, 'layout');
    const spec = { config: { Cmd: ['/bin/sh', '-c', "trap 'exit 0' TERM; sleep 86400 & wait"], Env: ['PATH=/bin'] } };
    await pushImage(await buildImage(layout, 'sleeper', spec), registry.host, 'bench/sleeper', '1');
    const load0 = os.loadavg();
    const r = await runtimeBackends({ host, work, berthBin: path.resolve(import.meta.dirname, '../bin/berth.js'), ref: `docker://${registry.host}/bench/sleeper:1`, runs: Number(values.runs), count: Number(values.containers), log });
    const load1 = os.loadavg();
    const s2 = (x: number) => x.toFixed(2);
    const lines = ['| what | median s | runs (s) | result |', '|---|---:|---|---|'];
    for (const row of describeRuntimes(r)) {
      if (row.samples) lines.push(`| ${row.what} | ${s2(median(row.samples.map((x) => x.wall)))} | ${row.samples.map((x) => s2(x.wall)).join(', ')} | |`);
      else lines.push(`| ${row.what} | | | ${row.text} |`);
    }
    process.stdout.write(`${lines.join('\n')}\n\nmachine: ${os.cpus().length} CPUs, load ${load0.map(s2).join(' ')} at the start, ${load1.map(s2).join(' ')} at the end\n`);
  } finally {
    await host?.stop();
    await registry?.stop();
    await host?.assertClean();
    rmSync(work, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((e: unknown) => {
    process.stderr.write(`${(e as Error).stack ?? e}\n`);
    process.exit(1);
  });
}
