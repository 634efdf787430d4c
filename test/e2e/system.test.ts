/**
 * System containers end to end on a real systemd: atomic-style exports
 * (templates, manifest.json, tmpfiles, hostfs), real etcd, ordering between
 * etcd -> flannel -> docker that survives a reboot, and the failure paths.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { buildImage, pushImage } from '../fixtures/oci-image.ts';
import {
  configTemplate, dockerLikeImage, etcdImage, exitingImage, flannelLikeImage, helloWorldImage, unresolvedVariableImage,
} from '../fixtures/system-images.ts';
import { waitFor } from '../harness/wait.ts';
import { BerthEnv } from '../harness/berth-env.ts';
import { unusedPort, type TestRegistry } from '../harness/registry.ts';
import type { TestHost } from '../harness/test-host.ts';
const run = promisify(execFile);

describe('system containers on a real systemd', () => {
  let env: BerthEnv;
  let host: TestHost;
  let registry: TestRegistry;
  let root: string;
  let layout: string;
  const ports = { client: 0, peer: 0, hello: 0, hello2: 0, docker: 0 };

  const berth = (command: string, ...args: string[]) => env.berth(command, ...args);
  const install = (...args: string[]) => env.berth('install', ...args);
  const etcdctl = (...args: string[]) => run('etcdctl', ['--endpoints', `http://127.0.0.1:${ports.client}`, ...args], { env: { ...process.env, ETCDCTL_API: '3' }, timeout: 20_000 });
  const inside = async (...cmd: string[]) => (await host.exec(cmd[0]!, cmd.slice(1))).code;
  const monotonic = async (unit: string) => Number(await host.unitProperty(unit, 'ActiveEnterTimestampMonotonic'));

  before(async () => {
    env = await BerthEnv.start('berth-sys');
    ({ host, registry, root, layout } = env);
    for (const k of Object.keys(ports) as (keyof typeof ports)[]) ports[k] = await unusedPort();
    const etcd = await buildImage(layout, 'etcd', etcdImage());
    await pushImage(etcd, registry.host, 'system/etcd', '3.4');
    await buildImage(layout, 'flannel', flannelLikeImage({ etcdEndpoint: `http://127.0.0.1:${ports.client}` }));
    await buildImage(layout, 'docker', dockerLikeImage(ports.docker));
    await buildImage(layout, 'hello', helloWorldImage(ports.hello));
    await buildImage(layout, 'exiting', exitingImage());
    await buildImage(layout, 'unresolved', unresolvedVariableImage());
    const writable = helloWorldImage(ports.hello);
    await buildImage(layout, 'writable', {
      ...writable,
      layers: [[{ path: 'exports/config.json.template', content: configTemplate({ args: ['/bin/true'], env: [] }).replace('"readonly": true', '"readonly": false') }]],
    });
  });

  after(async () => {
    await env?.stop();
  });

  it('installs etcd with --set from the registry; etcdctl on the host writes and reads; data on the host; read-only root', async () => {
    const client = `http://127.0.0.1:${ports.client}`;
    const peer = `http://127.0.0.1:${ports.peer}`;
    const r = await install('--system', '--tls-verify=false', '--name', 'etcd',
      '--set', `ETCD_LISTEN_CLIENT_URLS=${client}`, '--set', `ETCD_ADVERTISE_CLIENT_URLS=${client}`,
      '--set', `ETCD_LISTEN_PEER_URLS=${peer}`, '--set', `ETCD_INITIAL_ADVERTISE_PEER_URLS=${peer}`,
      `docker://${registry.host}/system/etcd:3.4`);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await host.unitProperty('etcd.service', 'ActiveState'), 'active');

    await etcdctl('put', '/atomic.io/network/config', '{"Network":"10.40.0.0/16"}');
    const got = await etcdctl('get', '--print-value-only', '/atomic.io/network/config');
    assert.equal(got.stdout.trim(), '{"Network":"10.40.0.0/16"}');

    assert.equal(await inside('test', '-d', '/var/lib/etcd/default.etcd/member'), 0, 'the data directory is on the host under STATE_DIRECTORY');
    const write = await host.exec('runc', ['exec', 'etcd', '/bin/sh', '-c', 'touch /probe']);
    assert.notEqual(write.code, 0, 'the root filesystem is read-only');
    assert.match(write.stderr + write.stdout, /read-only/i);

    // hostfs (renamed per renameFiles, content templated per installedFilesTemplate) and tmpfiles.
    assert.equal(await inside('test', '-x', '/usr/local/bin/etcdctl-etcd'), 0);
    assert.equal(await inside('test', '-f', '/etc/etcd/etcd.conf'), 0);
    assert.equal(await inside('test', '-f', '/etc/tmpfiles.d/etcd.conf'), 0);
    const info = JSON.parse(await fs.readFile(path.join(root, 'containers', 'etcd', 'info.json'), 'utf8'));
    assert.equal(info.set.ETCD_LISTEN_CLIENT_URLS, client, '--set values are recorded');
    assert.ok(info.hostFiles.files.some((f: { path: string }) => f.path === '/usr/local/bin/etcdctl-etcd'));
  });

  it('orders etcd -> flannel -> docker (installed in any order), and after a reboot all come back in order', async () => {
    let r = await install('--name', 'docker', '--requires', 'flannel', '--after', 'flannel', '--no-start', `oci:${layout}:docker`);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await host.unitProperty('docker.service', 'ActiveState'), 'inactive');
    r = await install('--name', 'flannel', '--no-start', `oci:${layout}:flannel`);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await host.systemctl('start', 'docker.service')).code, 0);
    const served = async () => (await fetch(`http://127.0.0.1:${ports.docker}/`)).text();
    const network = await waitFor(served).catch(async (e: unknown) => {
      throw new Error(`${String(e)}\n${await host.journal('flannel.service', 20)}\n${await host.journal('docker.service', 20)}`);
    });
    assert.match(network, /10\.40\.0\.0\/16/, 'docker serves the network config flannel read from etcd');
    assert.ok((await monotonic('flannel.service')) < (await monotonic('docker.service')));

    await host.reboot();
    for (const u of ['etcd.service', 'flannel.service', 'docker.service']) {
      const state = await waitFor(async () => ((await host.unitProperty(u, 'ActiveState')) === 'active' ? 'active' : undefined)).catch(async () => host.journal(u, 30));
      assert.equal(state, 'active', `${u} came back`);
    }
    const [e, f, d] = [await monotonic('etcd.service'), await monotonic('flannel.service'), await monotonic('docker.service')];
    assert.ok(e < f && f < d, `started in order etcd (${e}) < flannel (${f}) < docker (${d})`);
    assert.match(await waitFor(served), /10\.40\.0\.0\/16/);
  });

  it('installs the atomic hello-world conventions unchanged; --set overrides the image defaults', async () => {
    const r = await install('--name', 'hello', '--set', `PORT=${ports.hello}`, '--set', 'RECEIVER=berth', `oci:${layout}:hello`);
    assert.equal(r.code, 0, r.stderr);
    const body = await waitFor(async () => (await fetch(`http://127.0.0.1:${ports.hello}/`)).text());
    assert.match(body, /Hi berth/);
  });

  it('checks out two containers of one image as hard links to the same inodes', async () => {
    const r = await install('--name', 'hello2', '--set', `PORT=${ports.hello2}`, `oci:${layout}:hello`);
    assert.equal(r.code, 0, r.stderr);
    const a = await regularFiles(path.join(root, 'containers', 'hello', 'rootfs'));
    const b = await regularFiles(path.join(root, 'containers', 'hello2', 'rootfs'));
    assert.ok(a.size > 100, 'busybox, its applet symlinks and more');
    assert.deepEqual([...b.keys()].sort(), [...a.keys()].sort());
    for (const [p, ino] of a) assert.equal(b.get(p), ino, `${p} shares its inode`);
  });

  it('--dry-run prints config.json, the unit and tmpfiles and changes nothing', async () => {
    const r = await berth('install', '--dry-run', '--name', 'dry', '--set', 'RECEIVER=dry', `oci:${layout}:hello`);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /# config.json\n\{/);
    assert.match(r.stdout, /RECEIVER=dry/);
    assert.match(r.stdout, /ExecStart=.*runc.* dry/);
    assert.equal(await host.unitProperty('dry.service', 'LoadState'), 'not-found');
    await assert.rejects(fs.access(path.join(root, 'containers', 'dry')));
  });

  const nothingLeft = async (name: string) => {
    assert.equal(await host.unitProperty(`${name}.service`, 'LoadState'), 'not-found');
    const entries = await fs.readdir(path.join(root, 'containers'));
    assert.deepEqual(entries.filter((e) => e === name || e.startsWith(`${name}.`) || e.startsWith(`.staging-${name}`)), []);
    assert.notEqual(await inside('test', '-e', `/etc/tmpfiles.d/${name}.conf`), 0);
  };

  it('refuses bad templates and values with exit 2, leaving nothing', async () => {
    let r = await install('--name', 'unresolved', `oci:${layout}:unresolved`);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /service.template.*\$MODE|MODE.*service.template/);
    await nothingLeft('unresolved');

    r = await install('--name', 'forced', '--set', 'NAME=evil', `oci:${layout}:hello`);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /NAME/);
    await nothingLeft('forced');

    r = await install('--name', 'newline', '--set', 'RECEIVER=x\nExecStartPre=/bin/evil', `oci:${layout}:hello`);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /newline/);
    await nothingLeft('newline');

    r = await install('--name', 'writable', `oci:${layout}:writable`);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /readonly/);
    await nothingLeft('writable');
  });

  it('reports a container that exits at once with the journal, and leaves nothing (exit 7)', async () => {
    const r = await install('--name', 'exiting', `oci:${layout}:exiting`);
    assert.equal(r.code, 7, r.stderr);
    assert.match(r.stderr, /exiting.service failed to start/);
    assert.match(r.stderr, /exiting at once/, 'the journal lines are shown');
    await nothingLeft('exiting');
    const again = await install('--name', 'exiting', '--no-start', `oci:${layout}:exiting`);
    assert.equal(again.code, 0, 'the same name can be installed again at once');
    assert.equal((await berth('uninstall', 'exiting')).code, 0);
  });

  it('keeps a host file that already exists, and uninstall removes only unchanged files', async () => {
    await host.exec('sh', ['-c', 'mkdir -p /etc/etcd && echo mine > /etc/etcd/etcd2.conf']);
    const r = await install('--name', 'etcd2', '--no-start', `oci:${layout}:etcd`);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /\/etc\/etcd\/etcd2.conf already exists/);
    assert.equal((await host.exec('cat', ['/etc/etcd/etcd2.conf'])).stdout, 'mine\n');
    await host.exec('sh', ['-c', 'echo changed >> /usr/local/bin/etcdctl-etcd2']);
    const u = await berth('uninstall', 'etcd2');
    assert.equal(u.code, 0, u.stderr);
    assert.match(u.stderr, /kept host file \/usr\/local\/bin\/etcdctl-etcd2/);
    assert.equal((await host.exec('cat', ['/etc/etcd/etcd2.conf'])).stdout, 'mine\n', 'not ours: untouched');
  });

  it('uninstalls everything without a trace but the state directory', async () => {
    for (const name of ['docker', 'flannel', 'hello', 'hello2', 'etcd']) {
      const r = await berth('uninstall', name);
      assert.equal(r.code, 0, r.stderr);
      await nothingLeft(name);
    }
    assert.notEqual(await inside('test', '-e', '/usr/local/bin/etcdctl-etcd'), 0, 'host files removed');
    assert.equal(await inside('test', '-d', '/var/lib/etcd/default.etcd'), 0, 'user data is kept');
  });
});

/** Relative path -> inode of every regular file and symlink below `dir` (the store hard-links both). */
async function regularFiles(dir: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  const walk = async (d: string) => {
    for (const e of await fs.readdir(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile() || e.isSymbolicLink()) out.set(path.relative(dir, p), (await fs.lstat(p)).ino);
    }
  };
  await walk(dir);
  return out;
}
