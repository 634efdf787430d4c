/**
 * A fleet on a shared store, end to end (issue 15): a real docker-registry
 * (with an access log), a real GlusterFS volume (test/harness/gluster.ts;
 * read-write for the publisher, read-only for the hosts), the publisher
 * (`berth publish run`, polling, scanning with the OSV fixture, signing with
 * a real gpg key) and two test hosts whose berth.conf says shared-store= (here
 * $BERTH_SHARED_STORE, what the wrapper sets from it) and whose policy
 * requires the publisher's signature.
 *
 * Shown: a 300 MB image pushed is exploded, scanned and approved with nobody
 * calling the publisher; both hosts install it from the share with no blob
 * request of theirs in the registry's log, their disks growing by less than
 * 2% of the image, and their containers running the very same files; an
 * image with a blocked package is refused from the share and from the
 * registry (exit 8); a new version switches in by `berth update` from the
 * share; with the share unmounted or hung under a running host, `berth list`
 * and `berth status` answer and install falls back or refuses as configured.
 */
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { buildBigImage, LONG_RUNNING_CMD } from '../../bench/big-image.ts';
import { GpgHome } from '../fixtures/gpg.ts';
import { buildImage, hostOciArch, pushImage, type BuiltImage } from '../fixtures/oci-image.ts';
import { OSV_FIXTURE_DIR, debianTestImage } from '../fixtures/scan-images.ts';
import { BERTH } from '../harness/berth-env.ts';
import { TestGluster } from '../harness/gluster.ts';
import { TestRegistry } from '../harness/registry.ts';
import { TestHost, type ExecResult } from '../harness/test-host.ts';

const BIG_BYTES = 300 * 1024 * 1024;
const WAIT_PUBLISH_MS = 15 * 60_000;

/** `berth publish run` in the background; its output kept for failure messages. */
class Publisher {
  log = '';
  constructor(readonly child: ChildProcess) {
    child.stdout?.on('data', (d: Buffer) => (this.log = (this.log + d.toString()).slice(-20_000)));
    child.stderr?.on('data', (d: Buffer) => (this.log = (this.log + d.toString()).slice(-20_000)));
  }
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise<void>((r) => this.child.once('exit', () => r()));
    this.child.kill('SIGTERM');
    const t = setTimeout(() => this.child.kill('SIGKILL'), 60_000);
    await exited;
    clearTimeout(t);
  }
}

/** Bytes under `dirs` (du -sb, apparent sizes of what is there; hard links counted once). */
function du(dirs: readonly string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    execFile('du', ['-scb', '--one-file-system', ...dirs], (err, stdout) => {
      if (err && stdout === '') reject(err);
      else resolve(Number(/^(\d+)\s+total$/m.exec(String(stdout))?.[1] ?? NaN));
    });
  });
}

/** GETs of blobs in a registry access log excerpt. */
const blobGets = (log: string) => log.split('\n').filter((l) => /"GET \/v2\/\S+\/blobs\/sha256:/.test(l));

describe('a fleet on a shared store (GlusterFS)', () => {
  let work: string;
  let registry: TestRegistry;
  let gluster: TestGluster;
  let gpg: GpgHome;
  let publisher: Publisher | undefined;
  const hosts: TestHost[] = [];
  let publicKey: string;
  let bigDigest: string;
  let blockedDigest: string;

  /** berth on host `i` with its own root, policy (the publisher's key) and the share. */
  function berth(i: number, args: readonly string[], env: Record<string, string> = {}, timeoutMs = 600_000): Promise<ExecResult> {
    const dir = path.join(work, `host${i}`);
    const trust = ['install', 'update', 'pull'].includes(args[0]!) ? ['--policy', path.join(dir, 'policy.json'), '--registries.d', path.join(dir, 'registries.d'), '--tls-verify=false'] : [];
    return hosts[i]!.exec(process.execPath, [BERTH, '--root', path.join(dir, 'root'), args[0]!, ...trust, ...args.slice(1)], {
      env: { BERTH_SHARED_STORE: gluster.ro, ...env },
      timeoutMs,
    });
  }

  async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, ms = WAIT_PUBLISH_MS): Promise<T> {
    const deadline = Date.now() + ms;
    for (;;) {
      const v = await fn();
      if (v !== undefined) return v;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; publisher log:\n${publisher?.log ?? ''}`);
      await sleep(1_000);
    }
  }
  const readIf = (f: string) => fs.readFile(f, 'utf8').catch(() => undefined);
  const decisionOf = async (digest: string) => {
    const t = await readIf(path.join(gluster.rw, 'decisions', `${digest.replace(':', '-')}.json`));
    return t === undefined ? undefined : (JSON.parse(t) as { state: string; reasons: string[] });
  };

  before(async () => {
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'berth-fleet-'));
    // The share is mounted before the hosts boot: each gets its own copy of the ro mount.
    [gluster, registry, gpg] = await Promise.all([TestGluster.start(), TestRegistry.start({ accessLog: true }), GpgHome.create()]);
    const fpr = await gpg.generateKey('berth publisher', 'publisher@berth.example', 'ed25519');
    const secretKey = path.join(work, 'publisher.key');
    publicKey = path.join(work, 'publisher.gpg');
    await fs.writeFile(secretKey, await gpg.exportSecret(fpr));
    await fs.writeFile(publicKey, await gpg.exportPublic([fpr]));
    for (const i of [0, 1]) {
      const dir = path.join(work, `host${i}`);
      await fs.mkdir(path.join(dir, 'registries.d'), { recursive: true });
      await fs.writeFile(path.join(dir, 'policy.json'), JSON.stringify({ default: [{ type: 'reject' }], transports: { docker: { [registry.host]: [{ type: 'signedBy', keyType: 'GPGKeys', keyPath: publicKey }] } } }));
      // From the registry too, approvals are the publisher's signatures: host0 reads them on
      // its ro mount of the share; host1 from another copy (here the publisher's own mount),
      // as a fleet would from an HTTP look-aside, so its pulls still find them with the share gone.
      const sigstore = i === 0 ? path.join(gluster.ro, 'sigstore') : path.join(gluster.rw, 'sigstore');
      await fs.writeFile(path.join(dir, 'registries.d', 'share.yaml'), `docker:\n  ${registry.host}:\n    lookaside: file://${sigstore}\n`);
    }
    hosts.push(...(await Promise.all([TestHost.start(), TestHost.start()])));
    // Repositories pushed later start as "not found": a short backoff keeps polling them.
    const conf = path.join(work, 'publisher.conf');
    await fs.writeFile(
      conf,
      [`share=${gluster.rw}`, `repository=${registry.host}/big`, `repository=${registry.host}/vuln`, `repository=${registry.host}/small`, 'poll-interval=2s', 'poll-max-backoff=4s', `key=${secretKey}`, 'block-at=high', `osv-dir=${OSV_FIXTURE_DIR}`, 'tls-verify=false', ''].join('\n'),
    );
    publisher = new Publisher(spawn(process.execPath, [BERTH, 'publish', 'run', '--config', conf, '--insecure-policy'], { stdio: ['ignore', 'pipe', 'pipe'] }));
  });

  after(async () => {
    await publisher?.stop();
    await Promise.allSettled(hosts.map((h) => h.stop()));
    for (const h of hosts) await h.assertClean().catch((e: unknown) => console.error(e));
    await Promise.allSettled([registry?.stop(), gpg?.cleanup()]);
    await gluster?.stop();
    if (work) await fs.rm(work, { recursive: true, force: true });
  });

  it('a 300 MB image is published, and both hosts install it from the share: no blob fetched, < 2% disk, the same files', async () => {
    const big = await buildBigImage(path.join(work, 'big-oci'), 'v1', { files: 300, bytes: BIG_BYTES, architecture: hostOciArch(), busybox: '/bin/busybox', random: true });
    bigDigest = await pushImage({ layout: big.layout, tag: big.tag } as BuiltImage, registry.host, 'big', '1');
    await fs.rm(path.join(work, 'big-oci'), { recursive: true, force: true });
    const ref = path.join(gluster.rw, 'refs', registry.host, 'big', '1');
    await waitFor('the publisher to approve big:1', async () => ((await readIf(ref))?.trim() === bigDigest ? true : undefined));
    assert.equal((await decisionOf(bigDigest))?.state, 'approved');

    const logBefore = (await registry.log()).length;
    const dirsOf = (i: number) => [path.join(work, `host${i}`, 'root'), path.join(hosts[i]!.base, 'overlay'), hosts[i]!.unitDir];
    for (const i of [0, 1]) await fs.mkdir(path.join(work, `host${i}`, 'root'), { recursive: true });
    const before = await Promise.all([0, 1].map((i) => du(dirsOf(i))));
    const installs = await Promise.all([0, 1].map((i) => berth(i, ['install', '--name', 'big', `docker://${registry.host}/big:1`])));
    for (const r of installs) {
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /from shared store/);
    }
    const hostLog = (await registry.log()).slice(logBefore);
    assert.deepEqual(blobGets(hostLog), [], 'the hosts fetched no blob');
    const afterSizes = await Promise.all([0, 1].map((i) => du(dirsOf(i))));
    for (const i of [0, 1]) {
      const growth = afterSizes[i]! - before[i]!;
      console.log(`host${i}: local disk growth ${growth} bytes (${((growth / BIG_BYTES) * 100).toFixed(3)}% of the image)`);
      assert.ok(growth < BIG_BYTES * 0.02, `host${i} grew by ${growth} bytes`);
    }
    // The same files: the containers' /proc/PID/root shows one device and inode on both hosts.
    const ids: string[] = [];
    for (const i of [0, 1]) {
      assert.equal(await hosts[i]!.unitProperty('big.service', 'ActiveState'), 'active');
      const pid = await hosts[i]!.unitProperty('big.service', 'MainPID');
      const st = await hosts[i]!.exec('stat', ['-L', '-c', '%d:%i', `/proc/${pid}/root/bin/busybox`]);
      assert.equal(st.code, 0, st.stderr);
      ids.push(st.stdout.trim());
      const info = JSON.parse(await fs.readFile(path.join(work, `host${i}`, 'root', 'containers', 'big', 'info.json'), 'utf8')) as { source?: { kind: string; rootfs: string } };
      assert.equal(info.source?.kind, 'share');
      assert.equal(info.source?.rootfs, path.join(gluster.ro, 'images', bigDigest.replace(':', '-'), 'rootfs'));
      const config = JSON.parse(await fs.readFile(path.join(work, `host${i}`, 'root', 'containers', 'big', 'config.json'), 'utf8')) as { root: { path: string; readonly: boolean } };
      assert.deepEqual(config.root, { path: info.source?.rootfs, readonly: true });
    }
    const shared = await fs.stat(path.join(gluster.ro, 'images', bigDigest.replace(':', '-'), 'rootfs', 'bin', 'busybox'), { bigint: true });
    assert.equal(ids[0], ids[1], 'both containers run the same file');
    // stat(1) prints the 64-bit inode unsigned; Node's bigint stat holds it signed.
    assert.equal(ids[0], `${shared.dev}:${BigInt.asUintN(64, shared.ino)}`, "it is the share's file");
    const status = await berth(0, ['status', 'big']);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /from shared store /);
  });

  it('an image with a blocked package is refused from the share and from the registry', async () => {
    const img = await buildImage(path.join(work, 'vuln-oci'), 'v1', { ...debianTestImage(), config: { Cmd: LONG_RUNNING_CMD } });
    blockedDigest = await pushImage(img, registry.host, 'vuln', '1');
    const decision = await waitFor('the publisher to decide on vuln:1', () => decisionOf(blockedDigest));
    assert.equal(decision.state, 'blocked', JSON.stringify(decision));
    assert.ok(decision.reasons.some((r) => r.includes('BERTH-TEST-0001') || r.includes('CVE-2099-0001')), decision.reasons.join('; '));
    // By tag: the share has no approved vuln:1, so berth pulls, and the registry's image has no approval signature.
    const byTag = await berth(0, ['install', '--name', 'vuln', `docker://${registry.host}/vuln:1`]);
    assert.equal(byTag.code, 8, byTag.stderr);
    assert.match(byTag.stderr, /shared store .* does not have .*; pulling from the registry instead/);
    assert.match(byTag.stderr, /^berth: error: .*rejected/m);
    // By digest: the share holds the exploded image, but no signature.
    const byDigest = await berth(1, ['install', '--name', 'vuln', `docker://${registry.host}/vuln@${blockedDigest}`]);
    assert.equal(byDigest.code, 8, byDigest.stderr);
    assert.match(byDigest.stderr, /^berth: error: .*rejected/m);
    assert.doesNotMatch(byDigest.stderr, /pulling from the registry/);
    for (const i of [0, 1]) assert.equal((await berth(i, ['list', '--json'])).stdout.includes('"vuln"'), false);
  });

  it('a new version is one berth update away once approved, from the share', async () => {
    const v1 = await buildImage(path.join(work, 'small-oci'), 'v1', { layers: [[{ path: 'etc/version', content: 'v1\n' }]], config: { Cmd: LONG_RUNNING_CMD } });
    const d1 = await pushImage(v1, registry.host, 'small', '1');
    const ref = path.join(gluster.rw, 'refs', registry.host, 'small', '1');
    await waitFor('small:1', async () => ((await readIf(ref))?.trim() === d1 ? true : undefined));
    const inst = await berth(0, ['install', '--name', 'small', `docker://${registry.host}/small:1`]);
    assert.equal(inst.code, 0, inst.stderr);
    const v2 = await buildImage(path.join(work, 'small-oci'), 'v2', { layers: [[{ path: 'etc/version', content: 'v2\n' }]], config: { Cmd: LONG_RUNNING_CMD } });
    const d2 = await pushImage(v2, registry.host, 'small', '1');
    await waitFor('small:1 as v2', async () => ((await readIf(ref))?.trim() === d2 ? true : undefined));
    const t0 = Date.now();
    const up = await berth(0, ['update', 'small']);
    console.log(`berth update small from the share: ${Date.now() - t0} ms`);
    assert.equal(up.code, 0, up.stderr);
    assert.match(up.stderr, /from shared store/);
    const info = JSON.parse(await fs.readFile(path.join(work, 'host0', 'root', 'containers', 'small', 'info.json'), 'utf8')) as { manifestDigest: string };
    assert.equal(info.manifestDigest, d2);
    const rb = await berth(0, ['rollback', 'small']);
    assert.equal(rb.code, 0, rb.stderr);
    const un = await berth(0, ['uninstall', 'small']);
    assert.equal(un.code, 0, un.stderr);
  });

  it('the share unmounted under a running host: list and status answer, install falls back or refuses as configured', async () => {
    assert.equal((await hosts[1]!.exec('umount', [gluster.ro])).code, 0);
    const list = await berth(1, ['list'], {}, 120_000);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /big/);
    const status = await berth(1, ['status', 'big'], {}, 120_000);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /warning: shared store .* did not answer: .*not mounted/);
    const refused = await berth(1, ['install', '--name', 'small', `docker://${registry.host}/small:1`], { BERTH_SHARED_STORE_FALLBACK: 'refuse' });
    assert.equal(refused.code, 4, refused.stderr);
    assert.match(refused.stderr, /^berth: error: shared store \S+ is unavailable for .*not mounted/m);
    const pulled = await berth(1, ['install', '--name', 'small', `docker://${registry.host}/small:1`], { BERTH_SHARED_STORE_FALLBACK: 'pull' });
    assert.equal(pulled.code, 0, pulled.stderr);
    assert.match(pulled.stderr, /shared store \S+ is unavailable for .*; pulling from the registry instead/);
  });

  it('the share hung under a running host: list and status answer, install falls back', async () => {
    const pid = gluster.clientPid(gluster.ro);
    assert.ok(pid !== undefined, 'the ro mount has a FUSE client');
    process.kill(pid, 'SIGSTOP');
    try {
      const list = await berth(0, ['list'], {}, 120_000);
      assert.equal(list.code, 0, list.stderr);
      assert.match(list.stdout, /big/);
      const status = await berth(0, ['status', 'big'], {}, 120_000);
      assert.equal(status.code, 0, status.stderr);
      assert.match(status.stdout, /warning: shared store .* did not answer: .*did not answer within/);
      const refused = await berth(0, ['install', '--name', 'small2', `docker://${registry.host}/small:1`], { BERTH_SHARED_STORE_FALLBACK: 'refuse' }, 120_000);
      assert.equal(refused.code, 4, refused.stderr);
      assert.match(refused.stderr, /did not answer within/);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
  });
});
