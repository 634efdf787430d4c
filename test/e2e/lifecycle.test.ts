/**
 * Lifecycle end to end: update into the other slot with proof and automatic
 * rollback, rollback, no-op updates, uninstall without a trace, concurrent
 * installs under the lock, and berth's own units. The agent on the system bus
 * is tested with unprivileged callers in test/hostile/dbus.test.ts.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { buildImage, pushImage, type BuiltImage, type FixtureImageSpec } from '../fixtures/oci-image.ts';
import { etcdImage, helloWorldImage } from '../fixtures/system-images.ts';
import { BERTH, BerthEnv } from '../harness/berth-env.ts';
import { unusedPort, type TestRegistry } from '../harness/registry.ts';
import type { TestHost } from '../harness/test-host.ts';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const run = promisify(execFile);

/** etcd plus one more layer: a new version with its own digest. */
function etcdVersion(version: string, broken = false): FixtureImageSpec {
  const base = etcdImage();
  const extra = [{ path: 'etc/berth-test-version', content: `${version}\n` }];
  if (broken) extra.push({ path: 'usr/bin/etcd-env.sh', content: '#!/bin/sh\necho "etcd version C is broken"\nexit 3\n', executable: true } as never);
  return { ...base, layers: [...(base.layers ?? []), extra] };
}

describe('lifecycle: update, rollback, uninstall, locking, units', () => {
  let env: BerthEnv;
  let host: TestHost;
  let registry: TestRegistry;
  let work: string;
  let root: string;
  let layout: string;
  const images: Record<string, BuiltImage> = {};
  const ports = { client: 0, peer: 0, h1: 0, h2: 0 };

  const berth = (command: string, ...args: string[]) => env.berth(command, ...args);
  const etcdctl = (...args: string[]) => run('etcdctl', ['--endpoints', `http://127.0.0.1:${ports.client}`, '--dial-timeout', '3s', ...args], { env: { ...process.env, ETCDCTL_API: '3' }, timeout: 20_000 });
  const publish = async (version: string) => pushImage(images[version]!, registry.host, 'system/etcd', 'stable');
  const info = (name: string) => env.info(name);

  before(async () => {
    env = await BerthEnv.start('berth-life');
    ({ host, registry, work, root, layout } = env);
    for (const k of Object.keys(ports) as (keyof typeof ports)[]) ports[k] = await unusedPort();
    images['A'] = await buildImage(layout, 'a', etcdVersion('A'));
    images['B'] = await buildImage(layout, 'b', etcdVersion('B'));
    images['C'] = await buildImage(layout, 'c', etcdVersion('C', true));
    await buildImage(layout, 'hello', helloWorldImage(ports.h1));
  });

  after(async () => {
    await env?.stop();
  });

  /** Everything berth may touch on the host, as path -> content hash/link target. */
  const snapshot = async () => {
    const r = await host.exec('sh', ['-c', `for d in /etc/systemd/system /etc/tmpfiles.d /etc/etcd /usr/local/bin ${root}/containers; do [ -e "$d" ] && find "$d" \\( -type f -exec sha256sum {} + \\) -o \\( -type l -printf '%p -> %l\\n' \\) -o \\( -type d -printf '%p/\\n' \\); done | sort`]);
    // berth's own (empty) containers directory may stay; nothing in it may.
    return r.stdout.split('\n').filter((l) => l !== `${root}/containers/`).join('\n');
  };
  let before0 = '';

  it('updates etcd from A to B in the other slot: data survives, status shows both slots, still enabled', async () => {
    before0 = await snapshot();
    await publish('A');
    const client = `http://127.0.0.1:${ports.client}`;
    const peer = `http://127.0.0.1:${ports.peer}`;
    const r = await berth('install', '--tls-verify=false', '--name', 'etcd',
      '--set', `ETCD_LISTEN_CLIENT_URLS=${client}`, '--set', `ETCD_ADVERTISE_CLIENT_URLS=${client}`,
      '--set', `ETCD_LISTEN_PEER_URLS=${peer}`, '--set', `ETCD_INITIAL_ADVERTISE_PEER_URLS=${peer}`,
      `docker://${registry.host}/system/etcd:stable`);
    assert.equal(r.code, 0, r.stderr);
    await etcdctl('put', 'greeting', 'survives updates');

    await publish('B');
    const u = await berth('update', '--tls-verify=false', '--settle', '1', 'etcd');
    assert.equal(u.code, 0, u.stderr);
    assert.match(u.stdout, /etcd updated to .* in slot 1/);
    assert.equal((await etcdctl('get', '--print-value-only', 'greeting')).stdout.trim(), 'survives updates');
    assert.equal((await host.exec('runc', ['exec', 'etcd', 'cat', '/etc/berth-test-version'])).stdout.trim(), 'B');
    assert.equal(await host.unitProperty('etcd.service', 'UnitFileState'), 'enabled');

    const s = JSON.parse((await berth('status', '--json', 'etcd')).stdout);
    assert.equal(s.activeSlot, 1);
    assert.deepEqual(s.slots.map((x: { slot: number; active: boolean; info: { manifestDigest: string } }) => [x.slot, x.active, x.info.manifestDigest]), [
      [0, false, images['A']!.manifestDigest],
      [1, true, images['B']!.manifestDigest],
    ]);
    assert.equal(s.unit.activeState, 'active');
  });

  it('says so and changes nothing when there is nothing new', async () => {
    const beforeNoop = await snapshot();
    const unitBefore = await fs.stat(path.join(host.unitDir, 'etcd.service'));
    const u = await berth('update', '--tls-verify=false', 'etcd');
    assert.equal(u.code, 0, u.stderr);
    assert.match(u.stdout, /etcd is up to date/);
    assert.equal(await snapshot(), beforeNoop, 'file tree untouched');
    assert.equal((await fs.stat(path.join(host.unitDir, 'etcd.service'))).mtimeMs, unitBefore.mtimeMs, 'unit untouched');
  });

  it('rolls back by itself when the new version C fails, naming the cause; etcd answers again with its data', async () => {
    await publish('C');
    const u = await berth('update', '--tls-verify=false', '--settle', '1', 'etcd');
    assert.equal(u.code, 7, u.stderr);
    assert.match(u.stderr, /update of etcd to sha256:[0-9a-f]+ failed and was rolled back/);
    assert.match(u.stderr, /etcd version C is broken/, 'the journal lines name the cause');
    assert.equal(await host.unitProperty('etcd.service', 'ActiveState'), 'active');
    assert.equal((await etcdctl('get', '--print-value-only', 'greeting')).stdout.trim(), 'survives updates');
    assert.equal((await info('etcd')).manifestDigest, images['B']!.manifestDigest);
  });

  it('rolls back from B to A with berth rollback', async () => {
    await publish('B');
    // The failed C left no slot: update to B again is a no-op; the other slot holds A again only after an update.
    const s0 = JSON.parse((await berth('status', '--json', 'etcd')).stdout);
    if (s0.slots.length < 2) {
      // C replaced A's slot and was then removed; bring A back as the other slot the honest way.
      await publish('A');
      assert.equal((await berth('update', '--tls-verify=false', '--settle', '1', 'etcd')).code, 0);
      await publish('B');
      assert.equal((await berth('update', '--tls-verify=false', '--settle', '1', 'etcd')).code, 0);
    }
    const r = await berth('rollback', 'etcd');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /rolled back to .* in slot/);
    assert.equal((await host.exec('runc', ['exec', 'etcd', 'cat', '/etc/berth-test-version'])).stdout.trim(), 'A');
    assert.equal((await etcdctl('get', '--print-value-only', 'greeting')).stdout.trim(), 'survives updates');
  });

  it('uninstall leaves no trace but the data kept on purpose', async () => {
    const r = await berth('uninstall', 'etcd');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /Kept data in \/var\/lib\/etcd/);
    assert.equal(await host.unitProperty('etcd.service', 'LoadState'), 'not-found');
    assert.equal(await snapshot(), before0);
    assert.equal((await host.exec('test', ['-d', '/var/lib/etcd/default.etcd'])).code, 0, 'data kept');
  });

  it('serialises concurrent installs: different names both succeed, the same name once', async () => {
    const hello = (name: string, port: number) => berth('install', '--name', name, '--set', `PORT=${port}`, `oci:${layout}:hello`);
    const [a, b] = await Promise.all([hello('h1', ports.h1), hello('h2', ports.h2)]);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(b.code, 0, b.stderr);
    const [c, d] = await Promise.all([hello('h3', await unusedPort()), hello('h3', await unusedPort())]);
    assert.deepEqual([c.code, d.code].sort(), [0, 6], `${c.stderr}\n${d.stderr}`);
    assert.match(c.code === 6 ? c.stderr : d.stderr, /container h3 is already installed/);
    const list = JSON.parse((await berth('list', '--json')).stdout) as { name: string; activeState: string }[];
    assert.deepEqual(list.map((x) => [x.name, x.activeState]), [['h1', 'active'], ['h2', 'active'], ['h3', 'active']]);
    for (const n of ['h1', 'h2', 'h3']) assert.equal((await berth('uninstall', n)).code, 0);
  });

  it('systemd-analyze verify accepts every unit under units/', async () => {
    const dir = path.join(work, 'units');
    await fs.mkdir(dir);
    for (const f of await fs.readdir(path.join(REPO, 'units'))) {
      if (!/\.(service|timer)$/.test(f)) continue;
      // The package installs berth as /usr/bin/berth; here that path is node running bin/berth.js.
      const text = (await fs.readFile(path.join(REPO, 'units', f), 'utf8')).replaceAll('/usr/bin/berth', BERTH);
      await fs.writeFile(path.join(dir, f), text);
    }
    await fs.chmod(BERTH, 0o755);
    const files = (await fs.readdir(dir)).map((f) => path.join(dir, f));
    // --man=no: the units name berth's man pages, which the .deb installs and this host may lack.
    const r = await host.exec('systemd-analyze', ['verify', '--man=no', ...files]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr.trim(), '', r.stderr);
  });
});
