// Self-test of the e2e harness: a real systemd test host (units, journald, runc inside) and a
// local registry come up, work, and leave nothing behind (processes, mounts, cgroups, dirs).
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { mkdtemp, readFile, writeFile, mkdir, copyFile, rm } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { TestHost } from '../harness/test-host.ts';
import { TestRegistry, unusedPort } from '../harness/registry.ts';

const UNIT = 'hello-harness.service';
const UNIT_TEXT = `[Unit]
Description=berth harness self-test

[Service]
Type=simple
ExecStart=/bin/busybox sleep 1000
`;

/** A minimal OCI bundle: rootfs with a static busybox, config from `runc spec`. */
async function makeBundle(host: TestHost): Promise<string> {
  const bundle = await mkdtemp(path.join(os.tmpdir(), 'berth-bundle-'));
  await mkdir(path.join(bundle, 'rootfs/bin'), { recursive: true });
  await copyFile('/bin/busybox', path.join(bundle, 'rootfs/bin/busybox'));
  await fs.promises.chmod(path.join(bundle, 'rootfs/bin/busybox'), 0o755);
  const spec = await host.exec('runc', ['spec', '--bundle', bundle]);
  assert.equal(spec.code, 0, `runc spec: ${spec.stderr}`);
  const configPath = path.join(bundle, 'config.json');
  const config = JSON.parse(await readFile(configPath, 'utf8')) as {
    process: { terminal: boolean; args: string[] };
    root: { path: string; readonly: boolean };
    linux: { namespaces: { type: string }[] };
  };
  config.process.terminal = false;
  config.process.args = ['/bin/busybox', 'true'];
  config.root.readonly = true;
  config.linux.namespaces = config.linux.namespaces.filter((n) => n.type !== 'network');
  await writeFile(configPath, JSON.stringify(config, null, 2));
  return bundle;
}

test('harness: systemd test host and registry work and leave nothing behind', { timeout: 30_000 }, async () => {
  const [host, registry] = await Promise.all([TestHost.start(), TestRegistry.start()]);
  let bundle: string | undefined;
  try {
    // the booted systemd
    const state = await host.systemctl('is-system-running');
    assert.match(state.stdout.trim(), /^(running|degraded)$/, `is-system-running: ${state.stdout}${state.stderr}`);

    // a unit in the private /etc/systemd/system
    const write = await host.exec('sh', ['-c', `cat > /etc/systemd/system/${UNIT}`], { input: UNIT_TEXT });
    assert.equal(write.code, 0, write.stderr);
    assert.ok(fs.existsSync(path.join(host.unitDir, UNIT)), 'unit file lands in <base>/etc-systemd-system');
    assert.ok(!fs.existsSync(`/etc/systemd/system/${UNIT}`), "unit file must not land in the host's /etc/systemd/system");
    assert.equal((await host.systemctl('daemon-reload')).code, 0);
    const start = await host.systemctl('start', UNIT);
    assert.equal(start.code, 0, start.stderr);
    assert.equal(await host.unitProperty(UNIT, 'ActiveState'), 'active');
    assert.ok(Number(await host.unitProperty(UNIT, 'MainPID')) > 0);
    const stop = await host.systemctl('stop', UNIT);
    assert.equal(stop.code, 0, stop.stderr);
    assert.equal(await host.unitProperty(UNIT, 'ActiveState'), 'inactive');
    // journald works: PID 1's messages about the unit are in <base>/run/log/journal
    assert.match(await host.journal(UNIT), /Started hello-harness\.service/);

    // a real runc container inside the test host
    bundle = await makeBundle(host);
    const run = await host.exec('runc', ['run', '--bundle', bundle, 'harness-probe'], { timeoutMs: 15_000 });
    assert.equal(run.code, 0, `runc run: ${run.stdout}${run.stderr}`);
    const list = await host.exec('runc', ['list', '-q']);
    assert.equal(list.stdout.trim(), '', 'runc run removes the container when it exits');

    // the registry
    const res = await fetch(`${registry.url}/v2/`);
    await res.arrayBuffer();
    assert.equal(res.status, 200);
    assert.equal(registry.host, new URL(registry.url).host);
  } finally {
    await Promise.all([host.stop(), registry.stop()]);
    if (bundle) await rm(bundle, { recursive: true, force: true });
  }

  // stop() twice is fine; then nothing may be left
  await host.stop();
  await registry.stop();
  await host.assertClean();
  assert.ok(!fs.existsSync(registry.dir), 'registry temp dir removed');
  await assert.rejects(fetch(`${registry.url}/v2/`), 'registry no longer answers');
  const port = await unusedPort();
  await assert.rejects(fetch(`http://127.0.0.1:${port}/v2/`), 'unusedPort() has no listener');
});
