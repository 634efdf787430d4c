import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { buildImage, buildLayerTar, pushImage } from '../fixtures/oci-image.ts';
import type { FixtureImageSpec } from '../fixtures/oci-image.ts';

const SKOPEO = '/usr/bin/skopeo';
const REGISTRY = '/usr/bin/docker-registry';
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const haveSkopeo = existsSync(SKOPEO);
const haveRegistry = existsSync(REGISTRY);
const haveBusybox = existsSync('/bin/busybox');

const spec: FixtureImageSpec = {
  layers: [
    [
      { path: '/www/index.html', content: '<h1>hello</h1>\n' },
      { path: 'usr/local/bin/serve', content: '#!/bin/sh\nexec httpd -f -p 8080 -h /www\n', executable: true },
      { path: 'etc/motd', type: 'symlink', linkname: '../www/index.html' },
      { path: 'www/copy.html', type: 'hardlink', linkname: '/www/index.html' },
    ],
    [{ path: 'www/.wh.copy.html' }, { path: 'data', type: 'dir', mode: 0o700, uid: 65534, gid: 65534 }],
  ],
  config: {
    Cmd: ['/usr/local/bin/serve'],
    Env: ['PATH=/usr/local/bin:/bin'],
    Labels: { b: '2', a: '1' },
    ExposedPorts: { '8080/tcp': {} },
    StopSignal: 'SIGTERM',
  },
};

function run(cmd: string, args: string[]): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')}: ${stderr || err.message}`));
      else resolve({ stdout, stderr });
    });
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

async function tarEntries(blob: Buffer): Promise<{ name: string; type: string; mode: number; uid: number; mtime: number }[]> {
  const out: { name: string; type: string; mode: number; uid: number; mtime: number }[] = [];
  const ex = tar.extract();
  const done = (async () => {
    for await (const e of ex) {
      out.push({
        name: e.header.name,
        type: String(e.header.type),
        mode: e.header.mode ?? -1,
        uid: e.header.uid ?? -1,
        mtime: e.header.mtime?.getTime() ?? -1,
      });
      e.resume();
    }
  })();
  ex.end(blob);
  await done;
  return out;
}

const tmpDirs: string[] = [];
async function tmp(prefix: string): Promise<string> {
  const d = await mkdtemp(path.join(tmpdir(), prefix));
  tmpDirs.push(d);
  return d;
}

describe('oci-image fixture', { skip: !haveBusybox && 'no /bin/busybox' }, () => {
  let registry: ChildProcess | undefined;
  let registryLog = '';

  after(async () => {
    if (registry && registry.exitCode === null && registry.signalCode === null) {
      const exited = new Promise((r) => registry!.once('exit', r));
      registry.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      if (registry.exitCode === null && registry.signalCode === null) registry.kill('SIGKILL');
    }
    await Promise.all(tmpDirs.map((d) => rm(d, { recursive: true, force: true })));
  });

  let dirA = '';
  let built: Awaited<ReturnType<typeof buildImage>> | undefined;

  before(async () => {
    dirA = await tmp('berth-oci-a-');
    built = await buildImage(dirA, 'v1', spec);
  });

  it('is deterministic across builds', async () => {
    const dirB = await tmp('berth-oci-b-');
    const again = await buildImage(dirB, 'v1', spec);
    assert.equal(again.manifestDigest, built!.manifestDigest);
    assert.equal(again.configDigest, built!.configDigest);
    assert.deepEqual(again.layers, built!.layers);
    const blobsA = (await readdir(path.join(dirA, 'blobs', 'sha256'))).sort();
    const blobsB = (await readdir(path.join(dirB, 'blobs', 'sha256'))).sort();
    assert.deepEqual(blobsA, blobsB);
    assert.equal(await readFile(path.join(dirA, 'index.json'), 'utf8'), await readFile(path.join(dirB, 'index.json'), 'utf8'));
    // key order of the caller's objects does not matter
    const reordered = await buildImage(await tmp('berth-oci-c-'), 'v1', {
      ...spec,
      config: { ...spec.config, Labels: { a: '1', b: '2' } },
    });
    assert.equal(reordered.manifestDigest, built!.manifestDigest);
  });

  it('writes a well-formed layout', async () => {
    const img = built!;
    assert.equal(await readFile(path.join(dirA, 'oci-layout'), 'utf8'), '{"imageLayoutVersion":"1.0.0"}');
    const index = JSON.parse(await readFile(path.join(dirA, 'index.json'), 'utf8'));
    assert.equal(index.manifests.length, 1);
    assert.equal(index.manifests[0].digest, img.manifestDigest);
    assert.equal(index.manifests[0].annotations['org.opencontainers.image.ref.name'], 'v1');
    const blob = (d: string) => readFile(path.join(dirA, 'blobs', 'sha256', d.slice('sha256:'.length)));
    const manifest = JSON.parse((await blob(img.manifestDigest)).toString());
    assert.equal(manifest.mediaType, 'application/vnd.oci.image.manifest.v1+json');
    assert.equal(manifest.config.mediaType, 'application/vnd.oci.image.config.v1+json');
    assert.equal(manifest.layers.length, 3);
    const config = JSON.parse((await blob(img.configDigest)).toString());
    assert.deepEqual(Object.keys(config), ['created', 'architecture', 'os', 'config', 'rootfs', 'history']);
    assert.deepEqual(Object.keys(config.config.Labels), ['a', 'b']);
    assert.deepEqual(config.rootfs.diff_ids, img.layers.map((l) => l.diffId));
    assert.equal(config.history.length, 3);

    const layer0 = await blob(img.layers[0]!.digest);
    assert.equal(layer0.readUInt32LE(4), 0, 'gzip mtime is zero');
    const bb = await tarEntries(gunzipSync(layer0));
    const names = bb.map((e) => e.name);
    assert.ok(names.includes('bin/busybox'));
    assert.ok(names.includes('bin/sh'));
    assert.ok(names.includes('etc/passwd'));
    assert.ok(names.indexOf('bin/') < names.indexOf('bin/busybox'));
    assert.ok(bb.every((e) => e.mtime === Date.UTC(2000, 0, 1)));
    assert.ok(bb.every((e) => e.type !== 'pax-header'));

    const l1 = await tarEntries(gunzipSync(await blob(img.layers[1]!.digest)));
    assert.deepEqual(
      l1.map((e) => `${e.type} ${e.name}`),
      [
        'directory etc/',
        'symlink etc/motd',
        'directory usr/',
        'directory usr/local/',
        'directory usr/local/bin/',
        'file usr/local/bin/serve',
        'directory www/',
        'file www/index.html',
        'link www/copy.html',
      ],
    );
    assert.equal(l1.find((e) => e.name === 'usr/local/bin/serve')!.mode, 0o755);
    const l2 = await tarEntries(gunzipSync(await blob(img.layers[2]!.digest)));
    assert.deepEqual(l2.map((e) => `${e.name} ${e.mode.toString(8)} ${e.uid}`), [
      'data/ 700 65534',
      'www/ 755 0',
      'www/.wh.copy.html 644 0',
    ]);
  });

  it('supports uncompressed layers, raw layers and re-tagging', async () => {
    const dir = await tmp('berth-oci-d-');
    const raw = await buildLayerTar([{ path: 'x', content: 'y' }]);
    const a = await buildImage(dir, 'plain', { busybox: false, compression: 'none', rawLayers: [raw] });
    assert.equal(a.layers.length, 1);
    assert.equal(a.layers[0]!.mediaType, 'application/vnd.oci.image.layer.v1.tar');
    assert.equal(a.layers[0]!.digest, a.layers[0]!.diffId);
    const b = await buildImage(dir, 'other', { busybox: false, layers: [[{ path: 'z' }]] });
    const c = await buildImage(dir, 'plain', { busybox: false, layers: [[{ path: 'w' }]] });
    const index = JSON.parse(await readFile(path.join(dir, 'index.json'), 'utf8'));
    const refs = Object.fromEntries(
      index.manifests.map((m: { digest: string; annotations: Record<string, string> }) => [
        m.annotations['org.opencontainers.image.ref.name'],
        m.digest,
      ]),
    );
    assert.deepEqual(refs, { other: b.manifestDigest, plain: c.manifestDigest });
  });

  it('is accepted by skopeo', async (t) => {
    if (!isRoot || !haveSkopeo) return t.skip('needs root and skopeo');
    const { stdout } = await run(SKOPEO, ['inspect', '--raw', `oci:${dirA}:v1`]);
    const manifest = JSON.parse(stdout);
    assert.equal(manifest.schemaVersion, 2);
    assert.equal(manifest.config.digest, built!.configDigest);
    const out = await tmp('berth-oci-dir-');
    await run(SKOPEO, ['copy', '--insecure-policy', `oci:${dirA}:v1`, `dir:${out}`]);
    const copied = await readdir(out);
    for (const l of built!.layers) assert.ok(copied.includes(l.digest.slice('sha256:'.length)), `layer ${l.digest} copied`);
  });

  it('pushes to a registry', async (t) => {
    if (!isRoot || !haveSkopeo || !haveRegistry) return t.skip('needs root, skopeo and docker-registry');
    const storage = await tmp('berth-registry-');
    const port = await freePort();
    const configFile = path.join(storage, 'config.yml');
    await writeFile(
      configFile,
      [
        'version: 0.1',
        'log:',
        '  level: warn',
        'storage:',
        '  filesystem:',
        `    rootdirectory: ${path.join(storage, 'data')}`,
        'http:',
        `  addr: 127.0.0.1:${port}`,
        '',
      ].join('\n'),
    );
    registry = spawn(REGISTRY, ['serve', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    registry.stdout!.on('data', (c: Buffer) => (registryLog += c.toString()));
    registry.stderr!.on('data', (c: Buffer) => (registryLog += c.toString()));

    const deadline = Date.now() + 15_000;
    for (;;) {
      if (registry.exitCode !== null) assert.fail(`registry exited ${registry.exitCode}: ${registryLog}`);
      try {
        const res = await fetch(`http://127.0.0.1:${port}/v2/`);
        if (res.status === 200) break;
      } catch {
        /* not up yet */
      }
      if (Date.now() > deadline) assert.fail(`registry did not come up: ${registryLog}`);
      await new Promise((r) => setTimeout(r, 100));
    }

    const host = `127.0.0.1:${port}`;
    const pushed = await pushImage(built!, host, 'fixtures/web');
    assert.equal(pushed, built!.manifestDigest);
    const { stdout } = await run(SKOPEO, ['inspect', '--tls-verify=false', `docker://${host}/fixtures/web:v1`]);
    assert.equal(JSON.parse(stdout).Digest, built!.manifestDigest);

    const pushed2 = await pushImage(built!, host, 'fixtures/web', 'latest');
    assert.equal(pushed2, built!.manifestDigest);

    await assert.rejects(pushImage(built!, '127.0.0.1:1', 'nope'), /skopeo .* failed/);
  });
});
