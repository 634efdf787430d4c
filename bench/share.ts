/**
 * npm run bench:share: installing the 300 MB benchmark image on a host from
 * a shared store (a GlusterFS volume mounted read-only, filled by `berth
 * publish add`) against pulling it from the registry, in one run, on this
 * machine. Per host install: wall time (to an active container), the bytes
 * the host fetched from the registry (its blob GETs in the registry's access
 * log) and the bytes its disk grew by (du of its berth root and its /etc,
 * /var overlay), medians over --runs, with the machine's load. Not a test.
 * Needs root and what the tests need (glusterfs, docker-registry, systemd).
 *
 *   node --import tsx bench/share.ts [--runs N] [--cold]
 *
 * --runs N   rounds (default 3); each installs from the share, then by pull,
 *            into fresh roots, uninstalling after each
 * --cold     drop the page cache before each install (FUSE and local alike)
 *
 * Everything it creates is removed at the end, also on failure.
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

const REPO = path.resolve(import.meta.dirname, '..');
const BERTH = path.join(REPO, 'bin', 'berth.js');
const IMAGE = { files: 2_000, bytes: 300 * 1024 * 1024 };

const { values: opts } = parseArgs({ options: { runs: { type: 'string', default: '3' }, cold: { type: 'boolean', default: false } } });
const RUNS = Math.max(1, Number(opts.runs));
const started = Date.now();
const log = (msg: string) => process.stderr.write(`[bench:share ${((Date.now() - started) / 1000).toFixed(0).padStart(4)}s] ${msg}\n`);

/** Bytes of blob GETs in an access-log excerpt (combined format: "GET … HTTP/1.1" STATUS BYTES). */
function blobBytes(log: string): number {
  let n = 0;
  for (const m of log.matchAll(/"GET \/v2\/\S+\/blobs\/sha256:[0-9a-f]{64} HTTP\/[\d.]+" 200 (\d+)/g)) n += Number(m[1]);
  return n;
}

interface Row {
  how: 'share' | 'pull';
  sample: Sample;
  registryBytes: number;
  diskBytes: number;
}

async function main(): Promise<void> {
  const work = await mkdtemp(path.join(os.tmpdir(), 'berth-bench-share-'));
  let gluster: TestGluster | undefined;
  let registry: TestRegistry | undefined;
  let host: TestHost | undefined;
  try {
    [gluster, registry] = await Promise.all([TestGluster.start(), TestRegistry.start({ accessLog: true })]);
    log(`building the ${IMAGE.bytes >> 20} MB image (${IMAGE.files} files, random content)`);
    const big = await buildBigImage(path.join(work, 'oci'), 'v1', { ...IMAGE, architecture: hostOciArch(), busybox: '/bin/busybox', random: true });
    await pushImage({ layout: big.layout, tag: big.tag } as BuiltImage, registry.host, 'big', '1');
    rmSync(path.join(work, 'oci'), { recursive: true, force: true });
    const image = `docker://${registry.host}/big:1`;
    log('publishing it onto the share (berth publish add)');
    output(process.execPath, [...berthArgv(BERTH), 'publish', 'add', '--share', gluster.rw, '--insecure-policy', '--tls-verify=false', image]);
    host = await TestHost.start();
    const policy = writePolicy(work);
    const rows: Row[] = [];
    const loads: number[] = [];
    for (let run = 0; run < RUNS; run++) {
      for (const how of ['share', 'pull'] as const) {
        const root = path.join(work, `root-${how}-${run}`);
        mkdirSync(root);
        const diskDirs = [root, path.join(host.base, 'overlay'), host.unitDir];
        const diskBefore = duBytes(...diskDirs);
        const logBefore = (await registry.log()).length;
        loads.push(os.loadavg()[0]!);
        const env = { BERTH_SHARED_STORE: how === 'share' ? gluster.ro : '', BERTH_FROM_SOURCE: '' };
        const sample = await timed(work, process.execPath, [...berthArgv(BERTH), '--root', root, 'install', '--policy', policy, '--tls-verify=false', '--name', 'big', image], {
          cold: opts.cold,
          runner: (argv) => host!.exec(argv[0]!, argv.slice(1), { env, timeoutMs: 900_000 }),
        });
        const registryBytes = blobBytes((await registry.log()).slice(logBefore));
        const diskBytes = duBytes(...diskDirs) - diskBefore;
        rows.push({ how, sample, registryBytes, diskBytes });
        log(`${how} #${run + 1}: ${sample.wall.toFixed(2)} s, ${(registryBytes / 1e6).toFixed(1)} MB from the registry, disk +${(diskBytes / 1e6).toFixed(1)} MB`);
        await host.exec(process.execPath, [...berthArgv(BERTH), '--root', root, 'uninstall', 'big'], { env, timeoutMs: 300_000 });
        rmSync(root, { recursive: true, force: true });
      }
    }
    const table = ['| install of the 300 MB image, per host | wall s (median) | user+sys s | peak RSS MiB | from the registry MB | local disk MB |', '|---|---:|---:|---:|---:|---:|'];
    for (const how of ['share', 'pull'] as const) {
      const rs = rows.filter((r) => r.how === how);
      const med = (f: (r: Row) => number) => median(rs.map(f));
      table.push(
        `| ${how === 'share' ? 'from the shared store (GlusterFS, ro)' : 'pull from the registry'} | ${med((r) => r.sample.wall).toFixed(2)} | ${med((r) => r.sample.user + r.sample.sys).toFixed(2)} | ${(med((r) => r.sample.rssKb) / 1024).toFixed(0)} | ${(med((r) => r.registryBytes) / 1e6).toFixed(1)} | ${(med((r) => r.diskBytes) / 1e6).toFixed(1)} |`,
      );
    }
    process.stdout.write(`${table.join('\n')}\n\n${RUNS} runs${opts.cold ? ', page cache dropped before each' : ''}; load average (1 min) at the installs: median ${median(loads).toFixed(2)}, max ${Math.max(...loads).toFixed(2)}; ${os.cpus().length} CPUs, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB\n`);
  } finally {
    await host?.stop();
    await registry?.stop();
    await gluster?.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
