/**
 * Ordering means ready, not started: an etcd stand-in that answers only some
 * seconds after its process starts, with a readiness probe (`ready:` in the
 * plan), holds back flannel (After=etcd) until it answers — on apply and
 * after a reboot of the test host, when berth is not running and only the
 * units' own `berth ready-check` probes are. flannel's stand-in records
 * whether etcd answered when it started; the units' timestamps say the same.
 * Also: an image label asks for a probe by itself, and a probe that never
 * passes fails the install (exit 7) and leaves nothing.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { buildImage, pushImage, type FixtureImageSpec } from '../fixtures/oci-image.ts';
import { atomicServiceTemplate, configTemplate } from '../fixtures/system-images.ts';
import { TestRegistry, unusedPort } from '../harness/registry.ts';
import { TestHost } from '../harness/test-host.ts';
import { waitFor } from '../harness/wait.ts';

const BERTH = fileURLToPath(new URL('../../bin/berth.js', import.meta.url));
const PATH_ENV = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const DELAY_S = 4;

/** A system image running `script` (sh) with `env`; `labels` added to the image config. */
function scriptImage(script: string, env: string[], defaults: Record<string, string>, labels: Record<string, string> = {}): FixtureImageSpec {
  return {
    layers: [
      [
        { path: 'usr/bin/run.sh', content: `#!/bin/sh\ntrap 'exit 0' TERM\n${script}`, executable: true },
        { path: 'exports/manifest.json', content: JSON.stringify({ version: '1.0', defaultValues: defaults }) },
        { path: 'exports/service.template', content: atomicServiceTemplate({ description: 'readiness stand-in $NAME' }) },
        { path: 'exports/config.json.template', content: configTemplate({ args: ['/usr/bin/run.sh'], env: [...env, PATH_ENV] }) },
      ],
    ],
    config: { Cmd: ['/usr/bin/run.sh'], Env: [PATH_ENV], Labels: { 'atomic.type': 'system', ...labels } },
  };
}

/** etcd's stand-in: answers HTTP on $PORT only $DELAY seconds after it starts. */
const slowEtcd = (labels: Record<string, string> = {}) =>
  scriptImage(
    `echo "etcd: starting, answering in $DELAY s"
sleep "$DELAY" & wait $!
mkdir -p /tmp/www && echo ok > /tmp/www/index.html
echo "etcd: answering on $PORT"
httpd -f -p "127.0.0.1:$PORT" -h /tmp/www & wait
`,
    ['PORT=$PORT', 'DELAY=$DELAY'],
    { PORT: '2379', DELAY: String(DELAY_S) },
    labels,
  );

/** flannel's stand-in: says whether etcd answered when it started. */
const flannel = () =>
  scriptImage(
    // busybox-static's wget crashes with -T; nc connects and exits 0 when something listens.
    `if nc 127.0.0.1 "$ETCD_PORT" </dev/null; then echo "flannel: etcd answering at start"; else echo "flannel: etcd NOT answering at start"; fi
sleep 100000 & wait
`,
    ['ETCD_PORT=$ETCD_PORT'],
    { ETCD_PORT: '2379' },
  );

const docker = () => scriptImage('echo "docker: started"\nsleep 100000 & wait\n', [], {});

describe('readiness: ordering waits for a ready service', () => {
  let host: TestHost;
  let registry: TestRegistry;
  let work: string;
  let root: string;
  let policy: string;
  let port = 0;
  let labelPort = 0;

  const berth = (...args: string[]) => host.exec(process.execPath, [BERTH, '--root', root, ...args], { timeoutMs: 240_000 });
  const image = (repo: string) => `docker://${registry.host}/ready/${repo}:1`;
  const usec = async (unit: string, prop: string) => Number(await host.unitProperty(unit, prop));

  before(async () => {
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'berth-ready-'));
    root = path.join(work, 'root');
    policy = path.join(work, 'policy.json');
    await fs.writeFile(policy, JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }));
    port = await unusedPort();
    labelPort = await unusedPort();
    [host, registry] = await Promise.all([TestHost.start(), TestRegistry.start()]);
    const layout = path.join(work, 'layout');
    const specs: Record<string, FixtureImageSpec> = {
      etcd: slowEtcd(),
      flannel: flannel(),
      docker: docker(),
      'labelled-etcd': slowEtcd({ 'berth.ready.http': `http://127.0.0.1:${labelPort}/`, 'berth.ready.timeout': '60' }),
    };
    for (const [name, spec] of Object.entries(specs)) await pushImage(await buildImage(layout, name, spec), registry.host, `ready/${name}`, '1');
  });

  after(async () => {
    await host?.stop();
    await registry?.stop();
    await host?.assertClean();
    if (work) await fs.rm(work, { recursive: true, force: true });
  });

  /** etcd became active only once it answered, and flannel and docker started after that. */
  async function assertOrderedByReadiness(): Promise<void> {
    for (const u of ['etcd', 'flannel', 'docker']) assert.equal(await host.unitProperty(`${u}.service`, 'ActiveState'), 'active', u);
    const etcdStarted = await usec('etcd.service', 'ExecMainStartTimestampMonotonic');
    const etcdActive = await usec('etcd.service', 'ActiveEnterTimestampMonotonic');
    const flannelStarted = await usec('flannel.service', 'ExecMainStartTimestampMonotonic');
    const dockerStarted = await usec('docker.service', 'ExecMainStartTimestampMonotonic');
    // Causal bounds, not performance: etcd cannot answer before its sleep ends.
    assert.ok(etcdActive - etcdStarted >= (DELAY_S - 0.5) * 1e6, `etcd became active ${(etcdActive - etcdStarted) / 1e6} s after its process started: the probe did not wait`);
    assert.ok(flannelStarted >= etcdActive, `flannel started (${flannelStarted}) before etcd was ready (${etcdActive})`);
    assert.ok(dockerStarted >= (await usec('flannel.service', 'ActiveEnterTimestampMonotonic')), 'docker started before flannel was active');
    const journal = await host.journal('flannel.service');
    assert.match(journal, /flannel: etcd answering at start/, journal);
    assert.doesNotMatch(journal, /NOT answering/, journal);
  }

  it('apply: flannel starts only once etcd answers, and again after a reboot with berth not running', async () => {
    const plan = path.join(work, 'plan.yaml');
    await fs.writeFile(
      plan,
      `version: 1
defaults: { tlsVerify: false }
containers:
  etcd:
    image: ${image('etcd')}
    set: { PORT: ${port} }
    ready: { http: "http://127.0.0.1:${port}/", timeout: 60 }
  flannel:
    image: ${image('flannel')}
    after: [etcd]
    requires: [etcd]
    set: { ETCD_PORT: ${port} }
  docker:
    image: ${image('docker')}
    after: [flannel]
    requires: [flannel]
`,
    );
    const r = await berth('apply', '--policy', policy, '--settle', '1', plan);
    assert.equal(r.code, 0, r.stderr);
    const unit = await fs.readFile(path.join(host.unitDir, 'etcd.service'), 'utf8').catch(async () => (await host.exec('cat', ['/etc/systemd/system/etcd.service'])).stdout);
    assert.match(unit, /^ExecStartPost=.* ready-check --http http:\/\/127\.0\.0\.1:\d+\/ --timeout 60$/m, unit);
    await assertOrderedByReadiness();

    await host.reboot();
    await waitFor(async () => ((await host.unitProperty('docker.service', 'ActiveState')) === 'active' ? true : undefined), 120_000);
    await assertOrderedByReadiness();
  });

  it('an image label asks for a probe by itself (loopback only)', async () => {
    const r = await berth('install', '--policy', policy, '--tls-verify=false', '--name', 'labelled', '--set', `PORT=${labelPort}`, image('labelled-etcd'));
    assert.equal(r.code, 0, r.stderr);
    const started = await usec('labelled.service', 'ExecMainStartTimestampMonotonic');
    const active = await usec('labelled.service', 'ActiveEnterTimestampMonotonic');
    assert.ok(active - started >= (DELAY_S - 0.5) * 1e6, 'the label\'s probe held the start until the stand-in answered');
    assert.equal((await berth('uninstall', 'labelled')).code, 0);
  });

  it('--ready-cmd runs its command inside the container until it succeeds', async () => {
    // The stand-in writes /tmp/www/index.html (in its own tmpfs) only once its delay is over.
    const r = await berth('install', '--policy', policy, '--tls-verify=false', '--name', 'cmdprobe', '--set', `PORT=${labelPort}`, '--ready-cmd', 'test -s /tmp/www/index.html', image('etcd'));
    assert.equal(r.code, 0, r.stderr);
    const started = await usec('cmdprobe.service', 'ExecMainStartTimestampMonotonic');
    const active = await usec('cmdprobe.service', 'ActiveEnterTimestampMonotonic');
    assert.ok(active - started >= (DELAY_S - 0.5) * 1e6, 'the command probe held the start until the file existed in the container');
    assert.match(await host.journal('cmdprobe.service'), /ready: cmd test -s \/tmp\/www\/index\.html passed/);
    assert.equal((await berth('uninstall', 'cmdprobe')).code, 0);
  });

  it('a probe that never passes fails the install with exit 7 and leaves nothing', async () => {
    const never = await unusedPort();
    const r = await berth('install', '--policy', policy, '--tls-verify=false', '--name', 'never', '--set', `PORT=${port + 0}`, '--ready-tcp', `127.0.0.1:${never}`, '--ready-timeout', '3', image('docker'));
    assert.equal(r.code, 7, r.stderr);
    assert.match(r.stderr, /^berth: error: never\.service failed to start/m);
    assert.match(r.stderr, /not ready after 3 s/);
    assert.equal((await host.exec('test', ['-e', '/etc/systemd/system/never.service'])).code, 1, 'no unit left');
    await assert.rejects(fs.lstat(path.join(root, 'containers', 'never')));
    await assert.rejects(fs.lstat(path.join(root, 'containers', 'never.0')));
  });
});
