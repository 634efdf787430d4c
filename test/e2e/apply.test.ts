/**
 * berth apply end to end on a real systemd: an etcd -> flannel -> docker plan
 * applied in order, a second apply that changes nothing, a one-entry change,
 * a cycle refused before anything happens, a missing image that fails only
 * its own branch, and --prune.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { buildImage, pushImage } from '../fixtures/oci-image.ts';
import { dockerLikeImage, etcdImage, flannelLikeImage, helloWorldImage } from '../fixtures/system-images.ts';
import { TestRegistry, unusedPort } from '../harness/registry.ts';
import { waitFor } from '../harness/wait.ts';
import { TestHost } from '../harness/test-host.ts';

const BERTH = fileURLToPath(new URL('../../bin/berth.js', import.meta.url));
const run = promisify(execFile);

interface Action { name: string; action: string; reason?: string; error?: string }

describe('berth apply: declarative host plans', () => {
  let host: TestHost;
  let registry: TestRegistry;
  let work: string;
  let root: string;
  let policy: string;
  const ports = { client: 0, peer: 0, docker: 0, hello: 0, hello2: 0 };

  const berth = (...args: string[]) => host.exec(process.execPath, [BERTH, '--root', root, ...args], { timeoutMs: 180_000 });
  const apply = async (plan: string, ...args: string[]) => {
    const file = path.join(work, `plan-${Date.now()}.yaml`);
    await fs.writeFile(file, plan);
    return berth('apply', '--policy', policy, '--settle', '1', ...args, file);
  };
  const monotonic = async (unit: string) => Number(await host.unitProperty(unit, 'ActiveEnterTimestampMonotonic'));
  const image = (repo: string) => `docker://${registry.host}/system/${repo}:1`;
  const unitFiles = async () => {
    const r = await host.exec('sh', ['-c', `cd /etc/systemd/system && for f in *.service; do [ -f "$f" ] && printf '%s %s\\n' "$(sha256sum < "$f")" "$(stat -c %Y.%y "$f")"; done; ls ${root}/containers`]);
    return r.stdout;
  };

  /** The base plan; `dockerSet` adds to docker's values. */
  const basePlan = (dockerSet = '') => {
    const client = `http://127.0.0.1:${ports.client}`;
    const peer = `http://127.0.0.1:${ports.peer}`;
    return `version: 1
defaults: { tlsVerify: false }
containers:
  docker:
    image: ${image('docker')}
    requires: [flannel]
    after: [flannel]
    set: { PORT: ${ports.docker}${dockerSet} }
  flannel:
    image: ${image('flannel')}
    after: [etcd]
    requiredBy: [docker]
  etcd:
    image: ${image('etcd')}
    set:
      ETCD_LISTEN_CLIENT_URLS: "${client}"
      ETCD_ADVERTISE_CLIENT_URLS: "${client}"
      ETCD_LISTEN_PEER_URLS: "${peer}"
      ETCD_INITIAL_ADVERTISE_PEER_URLS: "${peer}"
`;
  };

  before(async () => {
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'berth-apply-'));
    root = path.join(work, 'root');
    const layout = path.join(work, 'layout');
    policy = path.join(work, 'policy.json');
    await fs.writeFile(policy, JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }));
    for (const k of Object.keys(ports) as (keyof typeof ports)[]) ports[k] = await unusedPort();
    [host, registry] = await Promise.all([TestHost.start(), TestRegistry.start()]);
    const specs = {
      etcd: etcdImage(),
      flannel: flannelLikeImage({ etcdEndpoint: `http://127.0.0.1:${ports.client}` }),
      docker: dockerLikeImage(ports.docker),
      hello: helloWorldImage(ports.hello),
    };
    for (const [name, spec] of Object.entries(specs)) await pushImage(await buildImage(layout, name, spec), registry.host, `system/${name}`, '1');
  });

  after(async () => {
    await host?.stop();
    await registry?.stop();
    await host?.assertClean();
    if (work) await fs.rm(work, { recursive: true, force: true });
  });

  it('applies etcd -> flannel -> docker in dependency order; all active, started in order', async () => {
    const r = await apply(basePlan(), '--json');
    assert.equal(r.code, 0, r.stderr);
    const { actions } = JSON.parse(r.stdout) as { actions: Action[] };
    assert.deepEqual(actions.map((a) => [a.name, a.action]), [['etcd', 'install'], ['flannel', 'install'], ['docker', 'install']]);
    for (const u of ['etcd', 'flannel', 'docker']) assert.equal(await host.unitProperty(`${u}.service`, 'ActiveState'), 'active', u);
    const [e, f, d] = [await monotonic('etcd.service'), await monotonic('flannel.service'), await monotonic('docker.service')];
    assert.ok(e < f && f < d, `started in order etcd (${e}) < flannel (${f}) < docker (${d})`);
    assert.match(await host.unitProperty('docker.service', 'Requires'), /flannel\.service/);

    await run('etcdctl', ['--endpoints', `http://127.0.0.1:${ports.client}`, 'put', '/atomic.io/network/config', '{"Network":"10.50.0.0/16"}'], { env: { ...process.env, ETCDCTL_API: '3' }, timeout: 20_000 });
    const served = await waitFor(async () => (await fetch(`http://127.0.0.1:${ports.docker}/`)).text());
    assert.match(served, /10\.50\.0\.0\/16/, 'docker serves what flannel read from etcd');
  });

  it('a second apply of the same plan changes nothing and says so', async () => {
    const before = await unitFiles();
    const stamps = [await monotonic('etcd.service'), await monotonic('docker.service')];
    const r = await apply(basePlan());
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /nothing to do/);
    assert.equal(await unitFiles(), before, 'unit files and slots untouched');
    assert.deepEqual([await monotonic('etcd.service'), await monotonic('docker.service')], stamps, 'nothing restarted');
  });

  it('updates only the entry whose set changed', async () => {
    const etcdStamp = await monotonic('etcd.service');
    const flannelStamp = await monotonic('flannel.service');
    const r = await apply(basePlan(', EXTRA: "yes"'), '--json');
    assert.equal(r.code, 0, r.stderr);
    const { actions } = JSON.parse(r.stdout) as { actions: Action[] };
    assert.deepEqual(actions.map((a) => [a.name, a.action]), [['etcd', 'none'], ['flannel', 'none'], ['docker', 'update']]);
    assert.match(actions[2]!.reason ?? '', /set EXTRA changed/);
    const info = JSON.parse(await fs.readFile(path.join(root, 'containers', 'docker', 'info.json'), 'utf8'));
    assert.equal(info.set.EXTRA, 'yes');
    assert.equal(await fs.readlink(path.join(root, 'containers', 'docker')), 'docker.1', 'updated into the other slot');
    assert.equal(await fs.readlink(path.join(root, 'containers', 'etcd')), 'etcd.0');
    assert.equal(await monotonic('etcd.service'), etcdStamp);
    assert.equal(await monotonic('flannel.service'), flannelStamp);
    assert.equal(await host.unitProperty('docker.service', 'ActiveState'), 'active');
  });

  it('applies what update cannot change (autoUpdate, ordering) by installing again', async () => {
    const changed = basePlan(', EXTRA: "yes"').replace('  etcd:\n', '  etcd:\n    autoUpdate: true\n    after: [network.target]\n');
    const r = await apply(changed, '--json');
    assert.equal(r.code, 0, r.stderr);
    const { actions } = JSON.parse(r.stdout) as { actions: Action[] };
    assert.deepEqual(actions.map((a) => [a.name, a.action]), [['etcd', 'update'], ['flannel', 'none'], ['docker', 'none']]);
    assert.match(actions[0]!.reason ?? '', /after changed.*autoUpdate true.*reinstalled/);
    const info = JSON.parse(await fs.readFile(path.join(root, 'containers', 'etcd', 'info.json'), 'utf8'));
    assert.equal(info.autoUpdate, true);
    assert.equal(await host.unitProperty('etcd.service', 'ActiveState'), 'active');
    const back = await apply(basePlan(', EXTRA: "yes"'));
    assert.equal(back.code, 0, back.stderr);
    assert.match(back.stdout, /etcd: update/);
    assert.equal((await apply(basePlan(', EXTRA: "yes"'))).stdout.trim(), 'nothing to do: the host matches the plan');
  });

  it('refuses a plan with a cycle (exit 2, naming it) and changes nothing', async () => {
    const before = await unitFiles();
    const cyclic = basePlan(', EXTRA: "no"').replace('    after: [etcd]\n', '    after: [etcd, docker]\n');
    const r = await apply(cyclic);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /dependency cycle (docker -> flannel -> docker|flannel -> docker -> flannel)/);
    assert.equal(await unitFiles(), before);
  });

  it('fails only the branch of a missing image: dependents skipped, the rest applied, non-zero exit', async () => {
    const plan = `${basePlan(', EXTRA: "yes"')}  ghost:
    image: docker://${registry.host}/system/ghost:1
    after: [etcd]
  hello:
    image: ${image('hello')}
    set: { PORT: ${ports.hello} }
    after: [ghost]
  hello2:
    image: ${image('hello')}
    set: { PORT: ${ports.hello2} }
`;
    const r = await apply(plan, '--json');
    assert.equal(r.code, 3, `a missing image exits 3 (not found)\n${r.stderr}`);
    const out = JSON.parse(r.stdout) as { actions: Action[]; error: { message: string } };
    const by = Object.fromEntries(out.actions.map((a) => [a.name, a]));
    assert.equal(by['ghost']!.action, 'failed');
    assert.match(by['ghost']!.error ?? '', /ghost/);
    assert.equal(by['hello']!.action, 'skipped');
    assert.match(by['hello']!.reason ?? '', /ghost/);
    assert.equal(by['hello2']!.action, 'install');
    for (const n of ['etcd', 'flannel', 'docker']) assert.equal(by[n]!.action, 'none', n);
    assert.match(out.error.message, /1 of 6 entries failed \(ghost\); skipped hello/);
    assert.match(r.stderr, /ghost/);
    assert.equal(await host.unitProperty('hello2.service', 'ActiveState'), 'active');
    assert.equal(await host.unitProperty('hello.service', 'LoadState'), 'not-found');
    assert.equal(await host.unitProperty('ghost.service', 'LoadState'), 'not-found');
  });

  it('--prune uninstalls containers the plan does not name; --dry-run only says so', async () => {
    const dry = await apply(basePlan(', EXTRA: "yes"'), '--prune', '--dry-run');
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /hello2: would uninstall/);
    assert.equal(await host.unitProperty('hello2.service', 'ActiveState'), 'active');

    const r = await apply(basePlan(', EXTRA: "yes"'), '--prune');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /hello2: uninstall/);
    assert.equal(await host.unitProperty('hello2.service', 'LoadState'), 'not-found');
    for (const u of ['etcd', 'flannel', 'docker']) assert.equal(await host.unitProperty(`${u}.service`, 'ActiveState'), 'active', u);
  });

  it('cleans up', async () => {
    const r = await berth('uninstall', '--all');
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse((await berth('list', '--json')).stdout), []);
  });
});

