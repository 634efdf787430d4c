/**
 * Installing an image on a host from a shared store (a GlusterFS volume
 * mounted read-only, filled by `berth publish add`) against pulling it from
 * the registry, in one run, on this machine. Per host install: wall time (to
 * an active container), CPU, the bytes the host fetched from the registry
 * (its blob GETs in the registry's access log) and the bytes its disk grew by
 * (du of its berth root and its /etc, /var overlay), medians over the runs.
 *
 * Part of `npm run bench` (bench/run.ts, section 7, with the bench's 300 MB /
 * 25,000-file image); also runs alone (`npm run bench:share`) with a 300 MB
 * image of 2,000 files of random content:
 *
 *   node --import tsx bench/share.ts [--runs N] [--cold]
 *
 * --runs N   rounds (default 3); each installs from the share, then by pull,
 *            into fresh roots, uninstalling after each
 * --cold     drop the page cache before each install (FUSE and local alike)
 *
 * Needs root, glusterfs-server/-client, docker-registry, systemd. The section
 * brings its own GlusterFS volume, registry (with an access log) and test
 * host, so that the volume is mounted before the host boots (a host's mount
 * namespace is a private copy made at its boot, test/harness/gluster.ts), and
 * removes all of them at the end, also on failure.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { TestGluster } from '../test/harness/gluster.ts';
import { TestRegistry } from '../test/harness/registry.ts';
import { TestHost } from '../test/harness/test-host.ts';
import { pushImage, hostOciArch, type BuiltImage } from '../test/fixtures/oci-image.ts';
import { berthArgv } from './berth-argv.ts';
import { buildBigImage } from './big-image.ts';
import { writePolicy } from './install.ts';
import { duBytes, median, output, timed, type Sample } from './measure.ts';

export const SHARE_WAYS = ['share', 'pull'] as const;
export type ShareWay = (typeof SHARE_WAYS)[number];

export interface ShareBench {
  /** Scratch directory (made if missing), visible inside the test host (under /tmp). */
  work: string;
  berthBin: string;
  /** The image to publish and install: an OCI layout and its tag (pushed to the section's own registry). */
  image: { layout: string; tag: string };
  runs: number;
  /** Drop the page cache before each install. */
  cold: boolean;
  log: (msg: string) => void;
}

export interface ShareInstall {
  sample: Sample;
  /** Bytes of blob GETs in the registry's access log during the install. */
  registryBytes: number;
  /** Growth of the host's berth root, /etc and /var overlay and unit directory, bytes. */
  diskBytes: number;
}

export interface ShareResult {
  installs: Record<ShareWay, ShareInstall[]>;
  /** 1-minute load average at each install. */
  loads: number[];
  runs: number;
}

/** Bytes of blob GETs in an access-log excerpt (combined format: "GET … HTTP/1.1" STATUS BYTES). */
function blobBytes(log: string): number {
  let n = 0;
  for (const m of log.matchAll(/"GET \/v2\/\S+\/blobs\/sha256:[0-9a-f]{64} HTTP\/[\d.]+" 200 (\d+)/g)) n += Number(m[1]);
  return n;
}

export async function shareVsPull(b: ShareBench): Promise<ShareResult> {
  mkdirSync(b.work, { recursive: true });
  let gluster: TestGluster | undefined;
  let registry: TestRegistry | undefined;
  let host: TestHost | undefined;
  try {
    b.log('share: starting a GlusterFS volume and a registry with an access log');
    [gluster, registry] = await Promise.all([TestGluster.start(), TestRegistry.start({ accessLog: true })]);
    await pushImage({ layout: b.image.layout, tag: b.image.tag } as BuiltImage, registry.host, 'big', '1');
    const image = `docker://${registry.host}/big:1`;
    b.log('share: publishing the image onto the share (berth publish add)');
    output(process.execPath, [...berthArgv(b.berthBin), 'publish', 'add', '--share', gluster.rw, '--insecure-policy', '--tls-verify=false', image]);
    b.log('share: booting a systemd test host (after the mount, so that it sees the share)');
    host = await TestHost.start();
    const policy = writePolicy(b.work);
    const installs: Record<ShareWay, ShareInstall[]> = { share: [], pull: [] };
    const loads: number[] = [];
    for (let run = 1; run <= b.runs; run++) {
      for (const how of SHARE_WAYS) {
        const root = path.join(b.work, `root-${how}-${run}`);
        mkdirSync(root);
        const diskDirs = [root, path.join(host.base, 'overlay'), host.unitDir];
        const diskBefore = duBytes(...diskDirs);
        const logBefore = (await registry.log()).length;
        loads.push(os.loadavg()[0]!);
        const env = { BERTH_SHARED_STORE: how === 'share' ? gluster.ro : '', BERTH_FROM_SOURCE: '' };
        const h = host;
        const sample = await timed(b.work, process.execPath, [...berthArgv(b.berthBin), '--root', root, 'install', '--policy', policy, '--tls-verify=false', '--name', 'big', image], {
          cold: b.cold,
          runner: (argv) => h.exec(argv[0]!, argv.slice(1), { env, timeoutMs: 900_000 }),
        });
        const registryBytes = blobBytes((await registry.log()).slice(logBefore));
        const diskBytes = duBytes(...diskDirs) - diskBefore;
        installs[how].push({ sample, registryBytes, diskBytes });
        b.log(`share: ${how} #${run}/${b.runs}: ${sample.wall.toFixed(2)} s, ${(registryBytes / 1e6).toFixed(1)} MB from the registry, disk +${(diskBytes / 1e6).toFixed(1)} MB`);
        await host.exec(process.execPath, [...berthArgv(b.berthBin), '--root', root, 'uninstall', 'big'], { env, timeoutMs: 300_000 });
        rmSync(root, { recursive: true, force: true });
      }
    }
    return { installs, loads, runs: b.runs };
  } finally {
    await host?.stop();
    await registry?.stop();
    await gluster?.stop();
  }
}

/** Rows for bench/run.ts's table and for the stand-alone run: the samples and the bytes, per way of installing. */
export function describeShare(r: ShareResult): { way: ShareWay; what: string; samples: Sample[]; note: string }[] {
  return SHARE_WAYS.map((way) => {
    const xs = r.installs[way];
    const mbOf = (f: (x: ShareInstall) => number) => (median(xs.map(f)) / 1e6).toFixed(1);
    return {
      way,
      what:
        way === 'share'
          ? '**berth install from the shared store** (GlusterFS volume, read-only FUSE mount, filled by `berth publish add`)'
          : 'berth install by pull from the registry (no shared store)',
      samples: xs.map((x) => x.sample),
      note: `${mbOf((x) => x.registryBytes)} MB from the registry, local disk +${mbOf((x) => x.diskBytes)} MB`,
    };
  });
}

/** Stand-alone: a 300 MB image of 2,000 random files; prints a table. */
async function main(): Promise<void> {
  const { values: opts } = parseArgs({ options: { runs: { type: 'string', default: '3' }, cold: { type: 'boolean', default: false } } });
  const runs = Math.max(1, Number(opts.runs));
  const started = Date.now();
  const log = (msg: string) => process.stderr.write(`[bench:share ${((Date.now() - started) / 1000).toFixed(0).padStart(4)}s] ${msg}\n`);
  const spec = { files: 2_000, bytes: 300 * 1024 * 1024 };
  const work = await mkdtemp(path.join(os.tmpdir(), 'berth-bench-share-'));
  try {
    log(`building the ${spec.bytes >> 20} MB image (${spec.files} files, random content)`);
    const big = await buildBigImage(path.join(work, 'oci'), 'v1', { ...spec, architecture: hostOciArch(), busybox: '/bin/busybox', random: true });
    const r = await shareVsPull({ work, berthBin: path.resolve(import.meta.dirname, '../bin/berth.js'), image: big, runs, cold: opts.cold, log });
    const table = ['| install of the 300 MB image, per host | wall s (median) | user+sys s | peak RSS MiB | from the registry MB | local disk MB |', '|---|---:|---:|---:|---:|---:|'];
    for (const way of SHARE_WAYS) {
      const xs = r.installs[way];
      const med = (f: (x: ShareInstall) => number) => median(xs.map(f));
      table.push(
        `| ${way === 'share' ? 'from the shared store (GlusterFS, ro)' : 'pull from the registry'} | ${med((x) => x.sample.wall).toFixed(2)} | ${med((x) => x.sample.user + x.sample.sys).toFixed(2)} | ${(med((x) => x.sample.rssKb) / 1024).toFixed(0)} | ${(med((x) => x.registryBytes) / 1e6).toFixed(1)} | ${(med((x) => x.diskBytes) / 1e6).toFixed(1)} |`,
      );
    }
    process.stdout.write(
      `${table.join('\n')}\n\n${runs} runs${opts.cold ? ', page cache dropped before each' : ''}; load average (1 min) at the installs: median ${median(r.loads).toFixed(2)}, max ${Math.max(...r.loads).toFixed(2)}; ${os.cpus().length} CPUs, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB\n`,
    );
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((e: unknown) => {
    process.stderr.write(`${(e as Error).stack ?? e}\n`);
    process.exit(1);
  });
}
