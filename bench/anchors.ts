/**
 * `npm run bench`: berth side by side with the anchor tools, in one run, on
 * one ~300 MB / 25,000-file image served by a local registry. Not a test:
 * it prints a table and writes docs/performance.md. Needs root and a built
 * dist/ (npm run build) for berth's start-up time.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { TestRegistry } from '../test/harness/registry.ts';
import { buildBigImage } from './big-image.ts';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const BERTH = path.join(REPO, 'bin/berth.js');
const RUNS = Number(process.env['BENCH_RUNS'] ?? 3);

interface Sample { seconds: number; rssMb: number }

/** Run a command under GNU time: wall seconds and peak RSS. */
function timed(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Sample {
  const r = spawnSync('/usr/bin/time', ['-f', '%e %M', cmd, ...args], { encoding: 'utf8', env, maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr.slice(-2000)}`);
  const [secs, kb] = r.stderr.trim().split('\n').pop()!.split(' ');
  return { seconds: Number(secs), rssMb: Number(kb) / 1024 };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const sh = (script: string) => execFileSync('sh', ['-c', script], { encoding: 'utf8' });
const dropCaches = () => spawnSync('sh', ['-c', 'sync; echo 3 > /proc/sys/vm/drop_caches']);
const duBytes = (dir: string) => Number(sh(`du -sxb ${dir}`).split(/\s/)[0]);

async function repeat(name: string, prepare: () => Promise<void> | void, run: () => Sample): Promise<{ name: string; seconds: number; rssMb: number }> {
  const samples: Sample[] = [];
  for (let i = 0; i < RUNS; i++) {
    await prepare();
    samples.push(run());
  }
  const r = { name, seconds: median(samples.map((s) => s.seconds)), rssMb: Math.max(...samples.map((s) => s.rssMb)) };
  console.log(`${name.padEnd(44)} ${r.seconds.toFixed(2).padStart(7)} s  ${r.rssMb.toFixed(0).padStart(5)} MB`);
  return r;
}

async function main() {
  if (process.getuid?.() !== 0) throw new Error('run as root');
  const work = await fs.mkdtemp(path.join(os.tmpdir(), 'berth-bench-'));
  const registry = await TestRegistry.start();
  try {
    console.log('building the benchmark image (25,000 files, ~300 MB)...');
    const arch = process.arch === 'arm64' ? 'arm64' : 'amd64';
    const image = await buildBigImage(path.join(work, 'layout'), 'big', { files: 25_000, bytes: 300e6, architecture: arch });
    const ref = `docker://${registry.host}/bench/big:1`;
    execFileSync('skopeo', ['copy', '--insecure-policy', '--dest-tls-verify=false', `oci:${image.layout}:big`, ref], { stdio: 'ignore' });
    const uncompressed = image.layers.reduce((n, l) => n + l.size, 0);
    const env = { ...process.env };
    delete env['BERTH_FROM_SOURCE'];
    const rows: { name: string; seconds: number; rssMb: number }[] = [];

    // 1. pull + import
    const root = path.join(work, 'root');
    rows.push(await repeat('berth pull (download+verify+import)', () => { sh(`rm -rf ${root}`); dropCaches(); },
      () => timed(process.execPath, [BERTH, '--root', root, '--quiet', 'pull', '--insecure-policy', '--tls-verify=false', ref], env)));
    const oci = path.join(work, 'oci');
    const bundle = path.join(work, 'bundle');
    const skopeo = await repeat('skopeo copy (registry -> oci layout)', () => { sh(`rm -rf ${oci}`); dropCaches(); },
      () => timed('skopeo', ['copy', '--insecure-policy', '--src-tls-verify=false', ref, `oci:${oci}:big`]));
    const umoci = await repeat('umoci unpack (oci layout -> rootfs)', () => { sh(`rm -rf ${bundle}`); dropCaches(); },
      () => timed('umoci', ['unpack', '--image', `${oci}:big`, bundle]));
    rows.push(skopeo, umoci, { name: 'skopeo copy + umoci unpack', seconds: skopeo.seconds + umoci.seconds, rssMb: Math.max(skopeo.rssMb, umoci.rssMb) });
    const tarDir = path.join(work, 'tar');
    rows.push(await repeat('tar -xzf of the three layers (the floor)', () => { sh(`rm -rf ${tarDir}; mkdir ${tarDir}`); dropCaches(); },
      () => timed('sh', ['-c', image.layers.map((l) => `tar -xzf ${l.file} -C ${tarDir}`).join(' && ')])));
    const repo = path.join(work, 'ostree');
    rows.push(await repeat('ostree commit (of the extracted tree)', () => { sh(`rm -rf ${repo}; ostree --repo=${repo} init --mode=bare`); dropCaches(); },
      () => timed('ostree', [`--repo=${repo}`, 'commit', '-b', 'big', `--tree=dir=${tarDir}`])));

    // 2. checkout
    const digest = image.manifestDigest;
    const checkouts = path.join(work, 'checkouts');
    await fs.mkdir(checkouts);
    let n = 0;
    rows.push(await repeat('berth checkout (hard links)', () => { dropCaches(); },
      () => timed(process.execPath, [path.join(REPO, 'bench/checkout.mjs'), root, digest, path.join(checkouts, `c${n++}`)])));
    let m = 0;
    rows.push(await repeat('ostree checkout -H (hard links)', () => { dropCaches(); },
      () => timed('ostree', [`--repo=${repo}`, 'checkout', '-H', 'big', path.join(work, `o${m++}`)])));

    // 3. start-up
    const ver: number[] = [];
    for (let i = 0; i < 10; i++) ver.push(timed(process.execPath, [BERTH, '--version'], env).seconds);
    const version = { name: 'berth --version (dist/)', seconds: median(ver), rssMb: 0 };
    console.log(`${version.name.padEnd(44)} ${version.seconds.toFixed(2).padStart(7)} s`);
    rows.push(version);

    // 4. disk: 20 checkouts of one image
    await fs.rm(checkouts, { recursive: true });
    await fs.mkdir(checkouts);
    execFileSync(process.execPath, [path.join(REPO, 'bench/checkout.mjs'), root, digest, path.join(checkouts, 'c0')]);
    const first = duBytes(checkouts);
    for (let i = 1; i < 20; i++) execFileSync(process.execPath, [path.join(REPO, 'bench/checkout.mjs'), root, digest, path.join(checkouts, `c${i}`)]);
    const all = duBytes(checkouts);
    const storeBytes = duBytes(path.join(root, 'store'));
    const perExtra = (all - first) / 19;
    const inodeA = sh(`stat -c %i ${checkouts}/c0/usr/lib/pkg0/f0.so`).trim();
    const inodeB = sh(`stat -c %i ${checkouts}/c19/usr/lib/pkg0/f0.so`).trim();
    console.log(`20 checkouts: ${(all / 1e6).toFixed(1)} MB beyond the store (${(storeBytes / 1e6).toFixed(0)} MB); each extra ${(perExtra / 1e6).toFixed(2)} MB = ${((perExtra / uncompressed) * 100).toFixed(2)}% of the image; same inode in c0 and c19: ${inodeA === inodeB}`);

    const t = (name: string) => rows.find((r) => r.name.startsWith(name))!;
    const pull = t('berth pull').seconds;
    const anchors = t('skopeo copy + umoci').seconds;
    const tarS = t('tar -xzf').seconds;
    const co = t('berth checkout').seconds;
    const ostreeCo = t('ostree checkout').seconds;
    const machine = `${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'}), ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Linux ${os.release()}, ${sh(`df -h ${work} | tail -1`).split(/\s+/)[0]}`;
    const versions = ['node --version', 'skopeo --version', 'umoci --version', 'ostree --version | head -2 | tail -1'].map((c) => sh(c).trim().split('\n')[0]).join('; ');
    const table = [
      '| measurement | seconds (median) | peak RSS MB |',
      '|---|---:|---:|',
      ...rows.map((r) => `| ${r.name} | ${r.seconds.toFixed(2)} | ${r.rssMb ? r.rssMb.toFixed(0) : '-'} |`),
    ].join('\n');
    const verdicts = [
      `pull+import ≤ 0.5× skopeo copy + umoci unpack: ${(pull / anchors).toFixed(2)}× — ${pull <= 0.5 * anchors ? 'met' : 'not met'}`,
      `pull+import ≤ 1.5× tar -xzf: ${(pull / tarS).toFixed(2)}× — ${pull <= 1.5 * tarS ? 'met' : 'not met'}`,
      `checkout ≤ 1.5× ostree checkout: ${(co / ostreeCo).toFixed(2)}× — ${co <= 1.5 * ostreeCo ? 'met' : 'not met'}`,
      `berth --version < 150 ms: ${(version.seconds * 1000).toFixed(0)} ms — ${version.seconds < 0.15 ? 'met' : 'not met'}`,
      `peak RSS < 150 MB (berth pull): ${t('berth pull').rssMb.toFixed(0)} MB — ${t('berth pull').rssMb < 150 ? 'met' : 'not met'}`,
      `each extra container < 2% of the image on disk: ${((perExtra / uncompressed) * 100).toFixed(2)}% — ${perExtra / uncompressed < 0.02 ? 'met' : 'not met'}`,
    ];
    const doc = `# Performance\n\nMeasured by \`npm run bench\` (bench/anchors.ts) on ${new Date().toISOString().slice(0, 10)}: ${machine}.\nVersions: ${versions}.\n\nImage: 25,000 files, ${(uncompressed / 1e6).toFixed(0)} MB compressed in three gzip layers (bench/big-image.ts), served by Debian's docker-registry on 127.0.0.1. Each measurement is the median of ${RUNS} runs with the page cache dropped before each (cold), wall time and peak RSS from GNU time. berth runs from dist/ (compiled).\n\n${table}\n\n20 checkouts of the image: each extra one adds ${(perExtra / 1e6).toFixed(2)} MB (directories only; files are hard links to the store's objects: the same inode in every checkout, so processes of all containers share one page cache).\n\n## Targets\n\n${verdicts.map((v) => `- ${v}`).join('\n')}\n\nSignature verification: about 2 ms per signature (test/unit/trust-bench.test.ts prints it), target < 5 ms.\n`;
    await fs.mkdir(path.join(REPO, 'docs'), { recursive: true });
    await fs.writeFile(path.join(REPO, 'docs/performance.md'), doc);
    console.log(`\n${table}\n\n${verdicts.join('\n')}\n\nwritten to docs/performance.md`);
  } finally {
    await registry.stop();
    await fs.rm(work, { recursive: true, force: true });
  }
}

await main();
