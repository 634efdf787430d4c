/**
 * berth's store commands for real, through the CLI, on a real registry:
 * pull (text, --json, progress), images, inspect, rmi, prune, verify
 * (--repair), mount/umount, file-level deduplication across images, and a
 * pull killed with SIGKILL half-way. The store commands need root but not
 * systemd, so berth runs on this host; only "in use" needs an installed
 * container, so that one install runs inside a TestHost on the same --root.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { webImage } from '../fixtures/images.ts';
import { buildImage, pushImage, type BuiltImage, type FixtureFile } from '../fixtures/oci-image.ts';
import { FaultProxy } from '../harness/fault-proxy.ts';
import { TestRegistry, unusedPort } from '../harness/registry.ts';
import { TestHost } from '../harness/test-host.ts';

const BERTH = fileURLToPath(new URL('../../bin/berth.js', import.meta.url));

interface Run {
  code: number;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

interface ImageJson {
  digest: string;
  references: string[];
  platform: string;
  layers: number;
  size: number;
  signatures: number;
  usedBy: string[];
}

/** Run `cmd` to its end, whatever its exit status. */
function runCommand(cmd: string, args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env }, timeout: 60_000, killSignal: 'SIGKILL' });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code: code ?? 128, signal, stdout, stderr }));
  });
}

/** Every file below `dir` (relative paths), recursively. */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await fs.readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((e) => !e.isDirectory()).map((e) => path.relative(dir, path.join(e.parentPath, e.name))).sort();
}

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

const isMountPoint = async (dir: string) => (await fs.readFile('/proc/self/mountinfo', 'utf8')).split('\n').some((l) => l.split(' ')[4] === dir);

describe('berth store commands, end to end', () => {
  let host: TestHost;
  let registry: TestRegistry;
  let proxy: FaultProxy;
  let work: string;
  let root: string;
  let layout: string;
  let policy: string;
  let mountDir: string;
  let port: number;
  const page1 = `<h1>store e2e ${process.pid} v1</h1>\n`;
  const page2 = `<h1>store e2e ${process.pid} v2</h1>\n`;
  let web1: BuiltImage;
  let web2: BuiltImage;
  let tools: BuiltImage;
  let other1: BuiltImage;
  let other2: BuiltImage;
  let big: BuiltImage;
  let bigDigest: string;
  const ref = (repo: string) => `docker://${registry.host}/${repo}`;

  const berth = (...args: string[]) => runCommand(process.execPath, [BERTH, '--root', root, ...args]);
  const pull = (...args: string[]) => berth('pull', '--policy', policy, '--tls-verify=false', ...args);
  const inside = (...args: string[]) => host.exec(process.execPath, [BERTH, '--root', root, ...args], { timeoutMs: 120_000 });
  const images = async () => {
    const r = await berth('images', '--json');
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as ImageJson[];
  };
  const objects = async () => (await filesUnder(path.join(root, 'store', 'objects'))).filter((f) => !f.endsWith('.xattrs'));
  const storeDir = async (sub: string) => (await fs.readdir(path.join(root, 'store', sub))).sort();

  before(async () => {
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'berth-store-e2e-'));
    root = path.join(work, 'root');
    layout = path.join(work, 'layout');
    mountDir = path.join(work, 'mnt');
    await fs.mkdir(mountDir);
    policy = path.join(work, 'policy.json');
    await fs.writeFile(policy, JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }));
    port = await unusedPort();
    [host, registry] = await Promise.all([TestHost.start(), TestRegistry.start()]);
    proxy = await FaultProxy.start(registry.url);
    web1 = await buildImage(layout, 'web1', webImage(port, page1));
    web2 = await buildImage(layout, 'web2', webImage(port, page2));
    tools = await buildImage(layout, 'tools', {
      layers: [
        [
          { path: 'usr/local/bin/tool', content: '#!/bin/sh\necho tool\n', executable: true },
          { path: 'usr/local/bin/t', type: 'symlink', linkname: 'tool' },
          { path: 'etc/tool.conf', content: 'verbose=1\n' },
          // The same bytes and metadata as the base layer's /etc/passwd: the same object, nothing new.
          { path: 'etc/passwd', content: 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' },
        ],
      ],
      config: { Cmd: ['/usr/local/bin/tool'], Labels: { 'org.example.role': 'tools', 'org.example.tier': 'base' } },
    });
    other1 = await buildImage(layout, 'other1', { layers: [[{ path: 'srv/version', content: 'one\n' }]], config: { Cmd: ['/bin/true'] } });
    other2 = await buildImage(layout, 'other2', { layers: [[{ path: 'srv/version', content: 'two\n' }]], config: { Cmd: ['/bin/true'] } });
    // ~64 MiB of incompressible files between two small layers: a pull that takes a moment.
    const blobs: FixtureFile[] = Array.from({ length: 64 }, (_, i) => ({ path: `data/blob-${String(i).padStart(2, '0')}`, content: randomBytes(1 << 20) }));
    big = await buildImage(layout, 'big', {
      compression: 'none', // skopeo gzips it on the way to the registry, much faster than the fixture's level 9
      layers: [[{ path: 'etc/big-1', content: 'first\n' }], blobs, [{ path: 'etc/big-2', content: 'last\n' }]],
      config: { Cmd: ['/bin/true'] },
    });
    await Promise.all([
      pushImage(web1, registry.host, 'store/web', '1'),
      pushImage(tools, registry.host, 'store/tools', '1'),
      pushImage(tools, registry.host, 'store/tools', 'alias'),
      pushImage(other1, registry.host, 'store/other', '1'),
    ]);
    bigDigest = await pushImage(big, registry.host, 'store/big', '1');
  });

  after(async () => {
    if (mountDir && (await isMountPoint(mountDir))) await runCommand('umount', [mountDir]);
    await proxy?.stop();
    await host?.stop();
    await registry?.stop();
    await host?.assertClean();
    if (work) await fs.rm(work, { recursive: true, force: true });
  });

  it('pulls (text and --json), deduplicating files across images; images and inspect describe them', async () => {
    const r = await pull('--quiet', ref('store/web:1'));
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '', '--quiet prints no progress');
    assert.equal(r.stdout, `${web1.manifestDigest}\n`, 'as podman pull -q: only the digest');
    const afterWeb = await objects();

    // The second image shares the busybox layer: it is not fetched, and only the tools layer's new files become objects.
    const t = await pull('--json', ref('store/tools:1'));
    assert.equal(t.code, 0, t.stderr);
    const json = JSON.parse(t.stdout) as { reference: string; digest: string; layers: number; fetchedLayers: number; newBytes: number };
    assert.deepEqual(json, { reference: ref('store/tools:1'), digest: tools.manifestDigest, layers: 2, fetchedLayers: 1, newBytes: json.newBytes });
    assert.ok(json.newBytes > 0 && json.newBytes < 100, `only the small new files are new bytes (${json.newBytes})`);
    assert.equal(t.stderr, '', '--json prints no progress');
    const afterTools = await objects();
    const added = afterTools.filter((o) => !afterWeb.includes(o));
    // tool, tool.conf and the symlink t -> tool; etc/passwd is the base layer's object again.
    assert.equal(added.length, 3, `new objects: ${added.join(', ')}`);
    assert.equal(afterTools.length, afterWeb.length + 3, 'no object was rewritten or removed');
    assert.equal((await storeDir('layers')).length, 3, 'busybox, www and tools: the shared base layer is stored once');

    // The same image under a second name: nothing is fetched; progress (stderr is not a terminal) says why.
    const alias = await pull(ref('store/tools:alias'));
    assert.equal(alias.code, 0, alias.stderr);
    assert.match(alias.stdout, /2 layer\(s\): 0 fetched, 2 already stored; 0 B of new objects/);
    assert.match(alias.stderr, /^Pulling [0-9a-f]{12}: 2 layer\(s\), 2 already stored$/m);
    assert.doesNotMatch(alias.stderr, /\x1b\[/, 'no escape sequences when stderr is not a terminal');

    const list = await images();
    assert.deepEqual(
      list.map((i) => [i.digest, i.references, i.platform, i.layers, i.usedBy]).sort(),
      [
        [web1.manifestDigest, [ref('store/web:1')], list[0]!.platform, 2, []],
        [tools.manifestDigest, [ref('store/tools:1'), ref('store/tools:alias')].sort(), list[0]!.platform, 2, []],
      ].sort(),
    );
    assert.match(list[0]!.platform, /^linux\/[a-z0-9]+$/);
    const webSize = list.find((i) => i.digest === web1.manifestDigest)!.size;
    assert.ok(webSize > 100_000 && webSize < 20_000_000, `size counts the busybox binary once: ${webSize}`);

    const text = await berth('images');
    assert.equal(text.code, 0, text.stderr);
    const lines = text.stdout.trimEnd().split('\n');
    assert.match(lines[0]!, /^REFERENCE\s+DIGEST\s+PLATFORM\s+SIZE\s+SIGNED\s+USED BY$/);
    assert.equal(lines.length, 4, 'one row per reference');
    assert.match(text.stdout, new RegExp(`^${ref('store/web:1')}\\s+${web1.manifestDigest.slice(7, 19)}\\s+linux/\\S+\\s+[\\d.]+ MiB\\s+no\\s+-$`, 'm'));

    const ins = await berth('inspect', '--json', tools.manifestDigest.slice(7, 23));
    assert.equal(ins.code, 0, ins.stderr);
    const d = JSON.parse(ins.stdout) as ImageJson & { config: { config: { Labels: Record<string, string>; Cmd: string[] }; rootfs: { diff_ids: string[] } }; layerDigests: { digest: string; diffId: string; size: number }[] };
    assert.equal(d.digest, tools.manifestDigest);
    assert.equal(d.signatures, 0);
    assert.deepEqual(d.config.config.Labels, { 'org.example.role': 'tools', 'org.example.tier': 'base' });
    assert.deepEqual(d.config.config.Cmd, ['/usr/local/bin/tool']);
    assert.deepEqual(
      d.layerDigests.map((l) => [l.digest, l.diffId, l.size]),
      tools.layers.map((l) => [l.digest, l.diffId, l.size]),
    );
    const insText = await berth('inspect', ref('store/tools:1'));
    assert.equal(insText.code, 0, insText.stderr);
    assert.match(insText.stdout, new RegExp(`^Digest:\\s+${tools.manifestDigest}$`, 'm'));
    assert.match(insText.stdout, /^Platform:\s+linux\/\S+$/m);
    assert.match(insText.stdout, /^Signatures:\s+0$/m);
    assert.match(insText.stdout, /^  org\.example\.role=tools$/m);
    assert.match(insText.stdout, new RegExp(`^  ${tools.layers[1]!.digest}  ${tools.layers[1]!.size}  application/vnd\\.oci\\.image\\.layer\\.v1\\.tar\\+gzip$`, 'm'));

    const missing = await berth('inspect', ref('store/nope:1'));
    assert.equal(missing.code, 3, missing.stderr);
    assert.match(missing.stderr, /^berth: error: image .*store\/nope:1 is not in the store/m);
  });

  it('rmi refuses an image a container uses (exit 6), removes a reference, and by digest the image', async () => {
    const inst = await inside('install', '--system', '--policy', policy, '--tls-verify=false', '--name', 'web', ref('store/web:1'));
    assert.equal(inst.code, 0, inst.stderr);
    assert.equal(await host.unitProperty('web.service', 'ActiveState'), 'active');
    assert.match(inst.stderr, /Using .*store\/web:1 from the store/, 'the install used the stored image, no pull');

    const used = (await images()).find((i) => i.digest === web1.manifestDigest)!;
    assert.deepEqual(used.usedBy, ['web']);
    assert.match((await berth('images')).stdout, new RegExp(`^${ref('store/web:1')}\\s+${web1.manifestDigest.slice(7, 19)}\\s.*\\sweb$`, 'm'));

    for (const arg of [ref('store/web:1'), web1.manifestDigest]) {
      const r = await berth('rmi', arg);
      assert.equal(r.code, 6, `rmi ${arg}: ${r.stderr}`);
      assert.match(r.stderr, /^berth: error: image .* is used by web \(uninstall it first\)/m);
    }
    assert.ok((await images()).some((i) => i.digest === web1.manifestDigest), 'the image is still there');

    const one = await berth('rmi', ref('store/tools:alias'));
    assert.equal(one.code, 0, one.stderr);
    assert.equal(one.stdout, `removed ${ref('store/tools:alias')}\n`);
    assert.deepEqual((await images()).find((i) => i.digest === tools.manifestDigest)?.references, [ref('store/tools:1')]);

    const byDigest = await berth('rmi', tools.manifestDigest.slice(7, 19));
    assert.equal(byDigest.code, 0, byDigest.stderr);
    assert.equal(byDigest.stdout, `removed ${ref('store/tools:1')}\n`);
    assert.equal((await images()).some((i) => i.digest === tools.manifestDigest), false, 'the image record is gone');
    assert.equal((await berth('inspect', ref('store/tools:1'))).code, 3);
  });

  it('prune frees what nothing uses, keeps images in use and referenced, and frees nothing the second time', async () => {
    // Tags move: web:1 now names web2, so web1 is kept only by the container; other:1's first image by nothing.
    assert.equal((await pull('-q', ref('store/other:1'))).code, 0);
    await pushImage(web2, registry.host, 'store/web', '1');
    await pushImage(other2, registry.host, 'store/other', '1');
    for (const r of [ref('store/web:1'), ref('store/other:1')]) {
      const p = await pull('-q', r);
      assert.equal(p.code, 0, p.stderr);
    }
    const before = await images();
    assert.deepEqual(before.find((i) => i.digest === web1.manifestDigest)?.references, [], 'web1 lost its reference');
    assert.match((await berth('images')).stdout, new RegExp(`^<none>\\s+${web1.manifestDigest.slice(7, 19)}\\s.*\\sweb$`, 'm'));
    const layersBefore = await storeDir('layers');
    const objectsBefore = await objects();

    const r = await berth('prune');
    assert.equal(r.code, 0, r.stderr);
    // other1 (an image record without reference) and two layers: other1's srv/version and the tools layer (rmi'd above).
    const m = /^freed (\S+ \S+): (\d+) image\(s\), (\d+) layer\(s\), (\d+) object\(s\)$/.exec(r.stdout.trim());
    assert.ok(m, r.stdout);
    assert.deepEqual([m[2], m[3]], ['1', '2']);
    assert.equal(Number(m[4]), 4, 'srv/version "one", tool, tool.conf and the symlink t');
    assert.notEqual(m[1], '0 B');
    assert.deepEqual(await storeDir('layers'), layersBefore.filter((l) => l !== `sha256-${other1.layers[1]!.diffId.slice(7)}` && l !== `sha256-${tools.layers[1]!.diffId.slice(7)}`));
    assert.equal((await objects()).length, objectsBefore.length - 4);
    assert.deepEqual(
      (await images()).map((i) => i.digest).sort(),
      [web1.manifestDigest, web2.manifestDigest, other2.manifestDigest].sort(),
      'kept: in use (web1) and referenced (web2, other2)',
    );

    const again = await berth('prune', '--json');
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(JSON.parse(again.stdout) as unknown, { images: 0, layers: 0, objects: 0, bytes: 0 });
    assert.equal((await berth('prune')).stdout, 'freed 0 B: 0 image(s), 0 layer(s), 0 object(s)\n');

    // Once the container is gone, nothing keeps web1.
    const un = await inside('uninstall', 'web');
    assert.equal(un.code, 0, un.stderr);
    const last = await berth('prune', '--json');
    assert.equal(last.code, 0, last.stderr);
    const freed = JSON.parse(last.stdout) as { images: number; layers: number; objects: number; bytes: number };
    assert.deepEqual({ ...freed, bytes: freed.bytes > 0 }, { images: 1, layers: 1, objects: 1, bytes: true }, 'web1 and its www layer (one page object)');
  });

  it('verify: ok; a corrupt object is named (exit 5); --repair drops it; a pull restores it', async () => {
    const ok = await berth('verify');
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    assert.match(ok.stdout, /^checked \d+ object\(s\), 3 layer\(s\), 2 image\(s\): ok$/m);

    // The object of web2's page, found by content; written in place, as a disk error or an intruder would.
    const objectsDir = path.join(root, 'store', 'objects');
    let victim: string | undefined;
    for (const o of await objects()) {
      if ((await fs.readFile(path.join(objectsDir, o), 'utf8').catch(() => '')) === page2) victim = o;
    }
    assert.ok(victim, 'the page is an object');
    const key = victim.replace('/', '');
    await fs.writeFile(path.join(objectsDir, victim), page2.replace('v2', 'v3'));

    const bad = await berth('verify');
    assert.equal(bad.code, 5, bad.stdout + bad.stderr);
    assert.match(bad.stdout, new RegExp(`^problem: object ${key} is corrupt: its content or metadata changed$`, 'm'));
    assert.match(bad.stdout, new RegExp(`^problem: layer ${web2.layers[1]!.diffId} needs 1 missing or corrupt object\\(s\\), e\\.g\\. ${key}$`, 'm'));
    assert.match(bad.stdout, new RegExp(`^problem: image ${web2.manifestDigest} \\(${esc(ref('store/web:1'))}\\) needs 1 missing or damaged layer\\(s\\)`, 'm'), 'the image is named by its references too');
    assert.match(bad.stderr, /^berth: error: the store has 3 problem\(s\) \(run berth verify --repair/m);

    const repair = await berth('verify', '--repair');
    assert.equal(repair.code, 0, repair.stdout + repair.stderr);
    assert.match(repair.stdout, /3 problem\(s\), 3 repaired$/m);
    await assert.rejects(fs.access(path.join(objectsDir, victim)), 'the corrupt object is gone');
    assert.equal((await berth('verify')).code, 0, 'nothing left to complain about');
    assert.equal((await images()).some((i) => i.digest === web2.manifestDigest), false, 'the image that needed it is gone until the next pull');
    assert.equal((await berth('inspect', ref('store/web:1'))).code, 3);
    // Its reference stays (it says what the user wants) and can still be removed.
    const dangling = await berth('rmi', ref('store/web:1'));
    assert.equal(dangling.code, 0, dangling.stderr);
    assert.equal(dangling.stdout, `removed ${ref('store/web:1')}\n`);

    const again = await pull(ref('store/web:1'));
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /2 layer\(s\): 1 fetched, 1 already stored/, 'only the damaged layer is fetched again');
    const fine = await berth('verify');
    assert.equal(fine.code, 0, fine.stdout);
    assert.equal(await fs.readFile(path.join(objectsDir, victim), 'utf8'), page2, 'the object is back, intact');
  });

  it('mount shows an image read-only; umount removes its checkout', async () => {
    const m = await berth('mount', ref('store/web:1'), mountDir);
    assert.equal(m.code, 0, m.stderr);
    assert.equal(m.stdout, `${mountDir}: ${web2.manifestDigest} (read-only)\n`);
    assert.ok(await isMountPoint(mountDir));
    assert.equal(await fs.readFile(path.join(mountDir, 'www', 'index.html'), 'utf8'), page2);
    assert.equal((await fs.lstat(path.join(mountDir, 'bin', 'busybox'))).mode & 0o7777, 0o755);
    assert.equal(await fs.readlink(path.join(mountDir, 'bin', 'sh')), 'busybox');
    await assert.rejects(fs.writeFile(path.join(mountDir, 'www', 'new.html'), 'x'), { code: 'EROFS' });
    await assert.rejects(fs.appendFile(path.join(mountDir, 'www', 'index.html'), 'x'), { code: 'EROFS' });
    await assert.rejects(fs.rm(path.join(mountDir, 'etc', 'passwd')), { code: 'EROFS' });
    const checkouts = await fs.readdir(path.join(root, 'mounts'));
    assert.equal(checkouts.length, 2, `one checkout and its record: ${checkouts.join(', ')}`);

    const twice = await berth('mount', ref('store/web:1'), mountDir);
    assert.equal(twice.code, 2, `a mount point in use is refused: ${twice.stderr}`);
    assert.match(twice.stderr, /is already a mount point/);
    assert.deepEqual(await fs.readdir(path.join(root, 'mounts')), checkouts, 'and leaves no second checkout');

    const u = await berth('umount', mountDir);
    assert.equal(u.code, 0, u.stderr);
    assert.equal(u.stdout, `${mountDir}: unmounted\n`);
    assert.equal(await isMountPoint(mountDir), false);
    assert.deepEqual(await fs.readdir(mountDir), [], 'the mount point is empty again');
    assert.deepEqual(await fs.readdir(path.join(root, 'mounts')), [], 'the checkout is gone');
    const again = await berth('umount', mountDir);
    assert.equal(again.code, 3, again.stderr);
    assert.match(again.stderr, /is not a berth mount/);
    assert.equal((await berth('verify')).code, 0, 'the store is untouched');

    // The same with --json, as every command that prints a result takes it.
    const mj = await berth('mount', '--json', ref('store/web:1'), mountDir);
    assert.equal(mj.code, 0, mj.stderr);
    const mounted = JSON.parse(mj.stdout) as Record<string, unknown>;
    assert.equal(Object.values(mounted).includes(web2.manifestDigest), true, mj.stdout);
    assert.ok(await isMountPoint(mountDir));
    const uj = await berth('umount', '--json', mountDir);
    assert.equal(uj.code, 0, uj.stderr);
    assert.doesNotThrow(() => JSON.parse(uj.stdout), uj.stdout);
    assert.equal(await isMountPoint(mountDir), false);
  });

  it('a pull killed with SIGKILL leaves a valid store and nothing visible; the next pull reuses the complete layers', async () => {
    const bigRef = `docker://${proxy.host}/store/big:1`;
    const bigLayer = big.layers[2]!;
    // Served as skopeo compressed it: find the big layer's blob in the registry manifest by position.
    const manifest = JSON.parse(await (await fetch(`${registry.url}/v2/store/big/manifests/1`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } })).text()) as { layers: { digest: string; size: number }[] };
    const blob = manifest.layers[2]!;
    assert.ok(blob.size > 60 * 1024 * 1024, `the big layer is big (${blob.size} bytes; diff_id ${bigLayer.diffId})`);
    // The download stops (the connection stays open) after a quarter: the kill lands mid-import, deterministically.
    proxy.inject(`/blobs/${blob.digest}`, { kind: 'stall', afterBytes: Math.floor(blob.size / 4) });

    const child = spawn(process.execPath, [BERTH, '--root', root, 'pull', '--policy', policy, '--tls-verify=false', bigRef], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.stdout.resume();
    const exited = new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.once('close', (code, signal) => resolve([code, signal])));
    const staged = async () => (await filesUnder(path.join(root, 'store', 'tmp'))).filter((f) => /\.import\./.test(f));
    const deadline = Date.now() + 30_000;
    // Progress lines (stderr is a pipe: a first and a last line per layer) tell how far it got.
    while (!(/layer 3\/4 \S+ downloading/.test(stderr) && (stderr.match(/ entries, /g) ?? []).length === 2 && (await staged()).length >= 4)) {
      assert.ok(Date.now() < deadline, `the pull did not get going: ${stderr}`);
      assert.equal(child.exitCode, null, `the pull ended early: ${stderr}`);
      await sleep(50);
    }
    child.kill('SIGKILL');
    const [, signal] = await exited;
    assert.equal(signal, 'SIGKILL');

    const v = await berth('verify');
    assert.equal(v.code, 0, v.stdout + v.stderr);
    assert.deepEqual(await fs.readdir(path.join(root, 'store', 'tmp')), [], "the dead pull's staging is cleared");
    assert.equal((await images()).some((i) => i.digest === bigDigest), false, 'no image');
    assert.equal((await berth('inspect', bigRef)).code, 3, 'no reference');
    assert.equal((await storeDir('refs')).some((r) => decodeURIComponent(r) === bigRef), false);
    assert.equal((await storeDir('layers')).includes(`sha256-${bigLayer.diffId.slice(7)}`), false, 'the interrupted layer is not recorded');

    // The lock died with its holder: a bounded wait proves it.
    const r = await berth('--lock-timeout', '10', 'pull', '--json', '--policy', policy, '--tls-verify=false', bigRef);
    assert.equal(r.code, 0, r.stderr);
    const done = JSON.parse(r.stdout) as { digest: string; fetchedLayers: number };
    assert.equal(done.fetchedLayers, 1, 'busybox and the two small layers were complete and are reused');
    assert.equal(done.digest, bigDigest);
    const fine = await berth('verify');
    assert.equal(fine.code, 0, fine.stdout);
    assert.ok((await images()).some((i) => i.digest === bigDigest && i.references.includes(bigRef)));
  });

  it('shows per-layer progress in place on a terminal', async () => {
    await pushImage(other1, registry.host, 'store/tty', '1');
    // script(1) gives berth a pseudo-terminal as stdout and stderr.
    const cmd = [process.execPath, BERTH, '--root', root, 'pull', '--policy', policy, '--tls-verify=false', ref('store/tty:1')].map((a) => `'${a}'`).join(' ');
    const r = await runCommand('script', ['-qec', cmd, '/dev/null'], { TERM: 'xterm' });
    assert.equal(r.code, 0, r.stdout);
    assert.match(r.stdout, /\n(?:\x1b\[2m)? {2}layer 2\/2 [0-9a-f]{12} downloading \d+ B/, 'a line per layer while it downloads');
    assert.match(r.stdout, /\x1b\[\d+A\r?\x1b\[2K(?:\x1b\[2m)? {2}layer 2\/2 [0-9a-f]{12} \d+ B: \d+ entries, \d+ B new/, 'redrawn in place (cursor up, clear line) when done');
    assert.match(r.stdout, / {2}total .+ in [\d.]+ s, [\d.]+ (B|KiB|MiB)\/s/, 'a total with its rate');
    assert.match(r.stdout, new RegExp(`${esc(ref('store/tty:1'))}: ${other1.manifestDigest}`));
  });
});
