/**
 * The first vertical slice, end to end, against a real systemd (PID 1 of
 * private namespaces), a real registry and real runc: berth runs inside the
 * test host exactly as on a real host.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { brokenImage, escapingLayer, webImage } from '../fixtures/images.ts';
import { buildImage, pushImage, type BuiltImage } from '../fixtures/oci-image.ts';
import { TestRegistry, unusedPort } from '../harness/registry.ts';
import { TestHost } from '../harness/test-host.ts';

const BERTH = fileURLToPath(new URL('../../bin/berth.js', import.meta.url));

describe('berth install --system, end to end', () => {
  let host: TestHost;
  let registry: TestRegistry;
  let work: string;
  let root: string;
  let layout: string;
  let port: number;
  let web: BuiltImage;
  const page = `<h1>berth e2e ${process.pid}</h1>\n`;

  let policy: string;
  const berth = (...args: string[]) =>
    host.exec(process.execPath, [BERTH, '--root', root, ...(args[0] === 'install' ? ['install', '--policy', policy, ...args.slice(1)] : args)], { timeoutMs: 180_000 });

  before(async () => {
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'berth-e2e-'));
    root = path.join(work, 'root');
    layout = path.join(work, 'layout');
    port = await unusedPort();
    policy = path.join(work, 'policy.json');
    await fs.writeFile(policy, JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }));
    [host, registry] = await Promise.all([TestHost.start(), TestRegistry.start()]);
    web = await buildImage(layout, 'web', webImage(port, page));
    await buildImage(layout, 'broken', brokenImage());
    await buildImage(layout, 'hostile', { rawLayers: [await escapingLayer()], config: { Cmd: ['/bin/true'] } });
    await pushImage(web, registry.host, 'demo/web', '1.0');
  });

  after(async () => {
    await host?.stop();
    await registry?.stop();
    await host?.assertClean();
    if (work) await fs.rm(work, { recursive: true, force: true });
  });

  const unitGone = async (name: string) => {
    assert.equal(await host.unitProperty(`${name}.service`, 'LoadState'), 'not-found', `${name}.service is unknown to systemd`);
    await assert.rejects(fs.access(path.join(host.base, 'etc-systemd-system', `${name}.service`)), 'the unit file is gone');
    await assert.rejects(fs.access(path.join(root, 'containers', name)), 'the checkout is gone');
    await assert.rejects(fs.access(path.join(root, 'containers', `${name}.0`)), 'the slot is gone');
  };

  const leftovers = async () => (await fs.readdir(path.join(root, 'containers')).catch(() => [] as string[])).filter((e) => e !== 'web');

  it('installs from the registry, serves the page, lists, and uninstalls without a trace', async () => {
    const r = await berth('install', '--system', '--tls-verify=false', `docker://${registry.host}/demo/web:1.0`, '--name', 'web');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /web: installed .* and started web.service/);

    assert.equal(await host.unitProperty('web.service', 'ActiveState'), 'active');
    assert.equal(await host.unitProperty('web.service', 'UnitFileState'), 'enabled');
    const res = await fetch(`http://127.0.0.1:${port}/index.html`);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), page, 'the page comes from the image');

    // The checkout is read-only in the runtime config and the container runs in the service's cgroup.
    const config = JSON.parse(await fs.readFile(path.join(root, 'containers', 'web', 'config.json'), 'utf8'));
    assert.equal(config.root.readonly, true);
    assert.equal(config.linux.cgroupsPath, '/system.slice/web.service/container');
    assert.equal(await fs.readFile(path.join(root, 'containers', 'web', 'rootfs', 'www', 'index.html'), 'utf8'), page);
    const runc = await host.exec('runc', ['state', 'web']);
    assert.equal(JSON.parse(runc.stdout).status, 'running');

    const ls = await berth('list', '--json');
    assert.equal(ls.code, 0, ls.stderr);
    const listed = JSON.parse(ls.stdout) as { name: string; image: string; manifestDigest: string; activeState: string; slot: number }[];
    assert.deepEqual(listed.map((c) => [c.name, c.image, c.manifestDigest, c.activeState, c.slot]), [
      ['web', `docker://${registry.host}/demo/web:1.0`, web.manifestDigest, 'active', 0],
    ]);
    const text = await berth('list');
    assert.match(text.stdout, /^NAME\s+IMAGE\s+DIGEST/);
    assert.match(text.stdout, new RegExp(`web\\s+docker://${registry.host}/demo/web:1.0\\s+${web.manifestDigest.slice(7, 19)}\\s+0\\s+active/running`));

    // A second install under the same name is refused, and the first keeps running.
    const again = await berth('install', '--tls-verify=false', `docker://${registry.host}/demo/web:1.0`, '--name', 'web');
    assert.equal(again.code, 6, again.stderr);
    assert.match(again.stderr, /^berth: error: container web is already installed \(uninstall it first/m);
    assert.equal(await host.unitProperty('web.service', 'ActiveState'), 'active');

    const un = await berth('uninstall', 'web');
    assert.equal(un.code, 0, un.stderr);
    assert.match(un.stdout, /web: uninstalled/);
    await unitGone('web');
    await assert.rejects(fetch(`http://127.0.0.1:${port}/`), 'nothing listens any more');
    assert.equal((await host.exec('runc', ['list', '-q'])).stdout.trim(), '', 'no runc state left');

    const twice = await berth('uninstall', 'web');
    assert.equal(twice.code, 0, 'uninstall is idempotent');
    assert.match(twice.stdout, /not installed, nothing to do/);
  });

  it('installs from an OCI layout with the default name', async () => {
    const r = await berth('install', `oci:${layout}:web`);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await host.unitProperty('web.service', 'ActiveState'), 'active');
    assert.equal(await (await fetch(`http://127.0.0.1:${port}/`)).text(), page);
    assert.equal((await berth('uninstall', 'web')).code, 0);
    await unitGone('web');
  });

  it('fails with exit 3 for an image that does not exist, leaving nothing', async () => {
    const r = await berth('install', '--tls-verify=false', `docker://${registry.host}/demo/nope:1.0`);
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /^berth: error: image docker:\/\/127\.0\.0\.1:\d+\/demo\/nope:1\.0 not found \(check the repository name/m);
    assert.equal(r.stderr.trim().split('\n').filter((l) => l.startsWith('berth: error')).length, 1, 'one error line');
    await unitGone('nope-1.0');
    assert.deepEqual(await leftovers(), []);
  });

  it('fails with exit 4 when the registry is down', async () => {
    const dead = await unusedPort();
    const r = await berth('install', '--tls-verify=false', `docker://127.0.0.1:${dead}/demo/web:1.0`);
    assert.equal(r.code, 4, r.stderr);
    assert.match(r.stderr, new RegExp(`berth: error: cannot reach registry 127.0.0.1:${dead}: connection refused \\(check the address`));
    assert.deepEqual(await leftovers(), []);
  });

  it('fails with exit 7 when the command does not exist, and undoes the install', async () => {
    const r = await berth('install', `oci:${layout}:broken`, '--name', 'broken');
    assert.equal(r.code, 7, r.stderr);
    // The built-in unit has Restart=on-failure (as atomic's): systemd may already be waiting to restart it.
    assert.match(r.stderr, /berth: error: broken.service failed to start \(job failed, state (failed\/failed|activating\/auto-restart: waiting to be restarted by systemd)\); the install was undone/);
    assert.match(r.stderr, /no such file or directory|not found/i, 'the journal says why');
    await unitGone('broken');
    assert.deepEqual(await leftovers(), []);
    assert.equal((await host.exec('runc', ['list', '-q'])).stdout.trim(), '');
  });

  it('refuses a layer that escapes the root (exit 5), writing nothing outside', async () => {
    await fs.rm('/tmp/berth-escape-probe', { force: true });
    const r = await berth('install', `oci:${layout}:hostile`, '--name', 'hostile');
    assert.equal(r.code, 5, r.stderr);
    assert.match(r.stderr, /berth: error: .*\.\.\/.*berth-escape-probe/);
    await assert.rejects(fs.access('/tmp/berth-escape-probe'), 'nothing escaped');
    await unitGone('hostile');
    assert.deepEqual(await leftovers(), []);
  });

  it('rejects bad usage with exit 2', async () => {
    assert.equal((await berth('install')).code, 2);
    assert.equal((await berth('install', 'docker://Bad/Name')).code, 2);
    assert.equal((await berth('install', `oci:${layout}:web`, '--name', '../evil')).code, 2);
  });
});
