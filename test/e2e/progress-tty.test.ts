/**
 * Pull progress as people and the journal see it: berth pulls through a
 * throttled proxy (FaultProxy 'throttle' in front of Debian's docker-registry).
 * Under a pseudo-terminal (script(1) from util-linux) the recording, with the
 * escape sequences stripped, shows per-layer rates and a total line; with
 * stderr a pipe (as under berth-apply.service) there are periodic lines with a
 * rate between a layer's first and last line, and a total. No timing
 * assertion: the 25 % marks come whatever the machine's speed.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildImage, type BuiltImage } from '../fixtures/oci-image.ts';
import { BERTH } from '../harness/berth-env.ts';
import { FaultProxy } from '../harness/fault-proxy.ts';
import { skopeoCopy, TestRegistry } from '../harness/registry.ts';
import { hasCommand } from '../harness/util.ts';

const missing = ['docker-registry', 'skopeo', 'script'].filter((c) => !hasCommand(c));
const strip = (s: string) => s.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/\r/g, '\n');

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { env, maxBuffer: 64 * 1024 * 1024, timeout: 300_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
    );
  });
}

describe('pull progress through a throttled registry', { skip: missing.length ? `missing: ${missing.join(', ')}` : false, timeout: 600_000 }, () => {
  let reg: TestRegistry;
  let proxy: FaultProxy;
  let dir: string;
  let image: BuiltImage;
  let conf: string;

  before(async () => {
    reg = await TestRegistry.start();
    dir = await mkdtemp(path.join(tmpdir(), 'berth-progress-'));
    conf = path.join(dir, 'registries.conf');
    await writeFile(conf, '');
    image = await buildImage(path.join(dir, 'layout'), 'bb', { layers: [[{ path: 'etc/motd', content: 'hi\n' }]] });
    await skopeoCopy(`oci:${image.layout}:bb`, `docker://${reg.host}/progress/bb:1`, ['--dest-tls-verify=false']);
    proxy = await FaultProxy.start(reg.host);
  });

  after(async () => {
    await proxy?.stop();
    await reg?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const pullArgs = (root: string) => [BERTH, '--root', root, 'pull', '--insecure-policy', '--tls-verify=false', `docker://${proxy.host}/progress/bb:1`];
  const env = { ...process.env, BERTH_REGISTRIES_CONF: '', BERTH_MIN_RATE: '0', TERM: 'xterm', NO_COLOR: '' };
  const throttle = () => {
    // Every layer blob, slowly: about 4 s for the megabyte of busybox.
    proxy.reset();
    proxy.inject(/\/blobs\/sha256:/, { kind: 'throttle', bytesPerSecond: 256 * 1024 }, 100);
  };

  it('on a terminal: per-layer rates and the total', async () => {
    throttle();
    const root = path.join(dir, 'tty');
    const cmd = ['stty cols 120 rows 40;', 'exec', ...[process.execPath, ...pullArgs(root)].map((a) => `'${a.replace(/'/g, `'\\''`)}'`)].join(' ');
    const r = await run('script', ['-qfec', cmd, '/dev/null'], { ...env, BERTH_REGISTRIES_CONF: conf });
    const text = strip(r.stdout);
    assert.equal(r.code, 0, text);
    assert.match(text, /layer \d+\/\d+ \S+ downloading [\d.]+ (?:[KMG]i)?B \/ [\d.]+ (?:[KMG]i)?B, [\d.]+ (?:[KMG]i)?B\/s/, `a layer's rate:\n${text}`);
    assert.match(text, /total [\d.]+ (?:[KMG]i)?B \/ [\d.]+ (?:[KMG]i)?B, [\d.]+ (?:[KMG]i)?B\/s/, `the running total:\n${text}`);
    assert.match(text, /total [\d.]+ (?:[KMG]i)?B in [\d.]+ s, [\d.]+ (?:[KMG]i)?B\/s/, `the final total:\n${text}`);
  });

  it('without a terminal (the journal): periodic lines with a rate, and a summary', async () => {
    throttle();
    const root = path.join(dir, 'log');
    const r = await run(process.execPath, pullArgs(root), { ...env, BERTH_REGISTRIES_CONF: conf });
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /\x1b\[/, 'no escape sequences in a log');
    // The big layer: its first line, at least the 25/50/75 % lines with a rate, its last line with its average.
    const lines = r.stderr.split('\n');
    const big = image.layers.reduce((a, b) => (b.size > a.size ? b : a));
    const mine = lines.filter((l) => l.includes(big.digest.slice(7, 19)));
    assert.ok(mine.filter((l) => /downloading .*, [\d.]+ (?:[KMG]i)?B\/s$/.test(l)).length >= 3, `periodic lines with a rate:\n${r.stderr}`);
    assert.match(mine.at(-1)!, /entries, .* new in [\d.]+ s, [\d.]+ (?:[KMG]i)?B\/s$/, r.stderr);
    assert.match(r.stderr, /^  total [\d.]+ (?:[KMG]i)?B in [\d.]+ s, [\d.]+ (?:[KMG]i)?B\/s$/m, r.stderr);
  });

  it('Ctrl-C during berth save -o OUT leaves neither OUT nor its temporary file', async () => {
    proxy.reset();
    proxy.inject(/\/blobs\/sha256:/, { kind: 'throttle', bytesPerSecond: 48 * 1024 }, 100);
    const out = path.join(dir, 'interrupted');
    await mkdir(out);
    const child = spawn(process.execPath, [BERTH, '--root', path.join(dir, 'save-root'), 'save', '--insecure-policy', '--tls-verify=false', '-o', path.join(out, 'bundle.tar'), `docker://${proxy.host}/progress/bb:1`], {
      env: { ...env, BERTH_REGISTRIES_CONF: conf },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
    // Interrupt once the temporary output exists (the throttle keeps it unfinished for seconds).
    for (let i = 0; i < 6000 && (await readdir(out)).length === 0; i++) await new Promise((r) => setTimeout(r, 50));
    assert.match((await readdir(out)).join(' '), /^bundle\.tar\.tmp-\d+/, `the save got as far as its temporary file: ${stderr}`);
    child.kill('SIGINT');
    const code = await exited;
    assert.notEqual(code, 0, 'an interrupted save fails');
    assert.deepEqual(await readdir(out), [], `nothing left: ${stderr}`);
  });
});
