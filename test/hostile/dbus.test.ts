/**
 * berth on the system bus (units/berth-agent.service, units/org.berth.Manager1.conf)
 * against an unprivileged caller: every state-changing method of
 * org.berth.Manager1 is denied, first by the bus policy and, with the policy
 * opened up, by the agent's own UID check; reading is allowed; a denied call
 * changes nothing.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { PRIVILEGED } from '../../src/agent/interface.ts';
import { helloWorldImage } from '../fixtures/system-images.ts';
import { BERTH } from '../harness/berth-env.ts';
import { unusedPort } from '../harness/registry.ts';
import type { TestHost } from '../harness/test-host.ts';
import { HostileScene } from './scene.ts';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const DEST = ['org.berth.Manager1', '/org/berth/Manager1', 'org.berth.Manager1'];

describe('D-Bus: the agent and an unprivileged caller', () => {
  let scene: HostileScene;
  let host: TestHost;
  let layout: string;
  /** dbus-send arguments of each state-changing method, aimed at the installed container. */
  let calls: Record<string, string[]>;

  const busctl = (...args: string[]) => host.exec('busctl', ['--json=short', 'call', ...DEST, ...args], { timeoutMs: 120_000 });
  /** dbus-send as nobody: unlike busctl it prints the error's name and message, so the two fences can be told apart. */
  const nobody = (method: string, ...args: string[]) =>
    host.exec('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'dbus-send', '--system', '--print-reply', `--dest=${DEST[0]}`, DEST[1]!, `${DEST[2]}.${method}`, ...args]);
  const reloadBus = () => host.exec('busctl', ['call', 'org.freedesktop.DBus', '/org/freedesktop/DBus', 'org.freedesktop.DBus', 'ReloadConfig']);

  before(async () => {
    scene = await HostileScene.start('berth-hostile-dbus');
    host = scene.env.host;
    layout = scene.env.layout;
    await scene.build('hello', helloWorldImage());
    const unit = (await fs.readFile(path.join(REPO, 'units/berth-agent.service'), 'utf8')).replace(
      'ExecStart=/usr/bin/berth agent',
      // with berth's private /tmp, like every berth the write check watches
      `ExecStart=${scene.privateTmpArgv([process.execPath, BERTH, '--root', scene.env.root, 'agent', '--policy', scene.env.policy]).join(' ')}${process.env['BERTH_FROM_SOURCE'] ? '\nEnvironment=BERTH_FROM_SOURCE=1' : ''}`,
    );
    await fs.writeFile(path.join(host.unitDir, 'berth-agent.service'), unit);
    const conf = await host.exec('sh', ['-c', `mkdir -p /etc/dbus-1/system.d && cp ${path.join(REPO, 'units/org.berth.Manager1.conf')} /etc/dbus-1/system.d/`]);
    assert.equal(conf.code, 0, conf.stderr);
    assert.equal((await reloadBus()).code, 0);
    assert.equal((await host.systemctl('daemon-reload')).code, 0);
    const start = await host.systemctl('start', 'berth-agent.service');
    assert.equal(start.code, 0, `${start.stderr}\n${await host.journal('berth-agent.service', 20)}`);
    calls = {
      Install: [`string:oci:${layout}:hello`, 'string:intruder', `array:string:PORT=${await unusedPort()}`],
      Update: ['string:viabus'],
      Rollback: ['string:viabus'],
      Uninstall: ['string:viabus'],
    };
  });

  after(async () => {
    if (host) await host.systemctl('stop', 'berth-agent.service');
    await scene?.stop();
  });

  it('installs and lists for root over the bus', async () => {
    const intro = await host.exec('busctl', ['introspect', ...DEST.slice(0, 2)]);
    assert.match(intro.stdout, /\.Install\s+method\s+ssas\s+s/);
    const inst = await busctl('Install', 'ssas', `oci:${layout}:hello`, 'viabus', '1', `PORT=${await unusedPort()}`);
    assert.equal(inst.code, 0, inst.stderr);
    assert.equal(JSON.parse(JSON.parse(inst.stdout).data[0]).activeState, 'active');
    const listed = JSON.parse(JSON.parse((await busctl('List')).stdout).data[0]) as { name: string }[];
    assert.deepEqual(listed.map((c) => c.name), ['viabus']);
  });

  it('covers every state-changing method', () => {
    assert.deepEqual(Object.keys(calls).sort(), [...PRIVILEGED].sort());
  });

  /** Each privileged call as nobody is denied with `message`, changes nothing, and reading still works. */
  const deniedToNobody = async (message: RegExp) => {
    await scene.unchangedBy(async () => {
      for (const [method, args] of Object.entries(calls)) {
        const r = await nobody(method, ...args);
        assert.notEqual(r.code, 0, `${method} as nobody: ${r.stdout}`);
        assert.match(r.stderr, message, method);
      }
    });
    assert.equal((await nobody('List')).code, 0, 'reading is allowed');
    const status = await nobody('Status', 'string:viabus');
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /"activeState":\s*"active"/, 'reading is allowed');
    assert.equal(await host.unitProperty('viabus.service', 'ActiveState'), 'active', 'the refused calls changed nothing');
    assert.equal(await host.unitProperty('intruder.service', 'LoadState'), 'not-found');
  };

  it('the bus policy refuses every state-changing method to an unprivileged caller', async () => {
    await deniedToNobody(/^Error org\.freedesktop\.DBus\.Error\.AccessDenied: Rejected send message/m);
  });

  it('with the bus policy opened up, the agent itself refuses them (the second fence)', async () => {
    const open = '<busconfig><policy context="default"><allow send_destination="org.berth.Manager1"/></policy></busconfig>\n';
    await host.exec('sh', ['-c', `cat > /etc/dbus-1/system.d/zz-berth-hostile-open.conf`], { input: open });
    assert.equal((await reloadBus()).code, 0);
    try {
      await deniedToNobody(/^Error org\.freedesktop\.DBus\.Error\.AccessDenied: (Install|Update|Rollback|Uninstall) needs root/m);
    } finally {
      await host.exec('rm', ['-f', '/etc/dbus-1/system.d/zz-berth-hostile-open.conf']);
      await reloadBus();
    }
  });

  it('uninstalls for root and stops cleanly', async () => {
    assert.equal((await busctl('Uninstall', 's', 'viabus')).code, 0);
    assert.equal((await host.systemctl('stop', 'berth-agent.service')).code, 0);
    assert.equal(await host.unitProperty('berth-agent.service', 'Result'), 'success', 'exits cleanly on SIGTERM');
  });
});
