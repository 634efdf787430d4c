/**
 * Every image of the atomic corpus (test/fixtures/atomic-corpus.ts: which
 * published image each entry stands for, and the features it exercises)
 * installs on a real systemd with real runc (and crun for the notifying
 * ones), with stand-in daemons:
 *  - the flannel-, docker-centos- and net-snmp-shaped images (their
 *    service.templates unchanged: Type=notify, NotifyAccess=all,
 *    ExecStart=$EXEC_START) are active only after their READY=1, which the
 *    stand-in sends 2 s after it starts, from the container's long-lived
 *    process, writing CLOCK_MONOTONIC first: ActiveEnterTimestampMonotonic
 *    is not before it;
 *  - a daemon that exits before READY=1 fails the install through its exit
 *    (not TimeoutStartSec=60), exit 7, and leaves nothing;
 *  - each image: install, active, `kill -9` of the container's init,
 *    restarted by its Restart= (NRestarts grows, active again), uninstall
 *    without a trace.
 * No timing assertions: the machine may be busy; timeouts are generous.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CORPUS, buildNotifyExec, flannelImage, type CorpusBinaries, type CorpusEntry } from '../fixtures/atomic-corpus.ts';
import { buildImage } from '../fixtures/oci-image.ts';
import { BerthEnv } from '../harness/berth-env.ts';
import type { TestHost } from '../harness/test-host.ts';
import { waitFor } from '../harness/wait.ts';

/** Container names get a prefix: renamed host files (/usr/local/bin/${NAME}ctl) must not shadow the machine's. */
const nameOf = (id: string) => `corpus-${id}`;

/**
 * Host paths (the test host shares the machine's /etc and /var) that the corpus's tmpfiles lines
 * and host files may create; those missing before the tests are removed afterwards.
 */
const HOST_PATHS = [
  '/etc/sysconfig', '/etc/snmp', '/var/lib/net-snmp', '/etc/kubernetes', '/etc/cni', '/var/lib/kubelet', '/var/lib/cni', '/etc/pki',
  '/etc/adjtime', '/sysroot', '/var/lib/sss', '/var/lib/docker', '/var/lib/etcd', '/var/log/ovirt-guest-agent', '/var/log/qemu-ga',
  '/lib/modules', '/home', '/opt', '/mnt', '/etc/flanneld', '/etc/localtime', '/etc/hostname', '/etc/nsswitch.conf',
];

describe('the atomic corpus on a real systemd', () => {
  let env: BerthEnv;
  let host: TestHost;
  let bin: CorpusBinaries;
  const absent: string[] = [];

  const install = (...args: string[]) => env.berth('install', ...args);
  const prop = (name: string, p: string) => host.unitProperty(`${name}.service`, p);
  const num = async (name: string, p: string) => Number(await prop(name, p));
  const inside = async (...cmd: string[]) => host.exec(cmd[0]!, cmd.slice(1));

  before(async () => {
    for (const p of HOST_PATHS) if (!existsSync(p)) absent.push(p);
    env = await BerthEnv.start('berth-corpus');
    host = env.host;
    bin = { notifyExec: await buildNotifyExec() };
    for (const entry of CORPUS) await buildImage(env.layout, entry.id, entry.image(bin));
    await buildImage(env.layout, 'flannel-early', flannelImage(bin, { exitBeforeReady: 3, service: ['TimeoutStartSec=60'] }));
  });

  after(async () => {
    await env?.stop();
    for (const p of absent) await fs.rm(p, { recursive: true, force: true });
  });

  /** Nothing of `name` is left: unit, slots, tmpfiles.d file, runtime state. */
  const nothingLeft = async (name: string, runtime = 'runc') => {
    assert.equal(await prop(name, 'LoadState'), 'not-found', `${name}.service is unknown to systemd`);
    await assert.rejects(fs.access(path.join(host.base, 'etc-systemd-system', `${name}.service`)), 'no unit file');
    const entries = await fs.readdir(path.join(env.root, 'containers')).catch(() => [] as string[]);
    assert.deepEqual(entries.filter((e) => e === name || e.startsWith(`${name}.`) || e.includes(`-${name}`)), [], 'no slot, no staging');
    assert.notEqual((await inside('test', '-e', `/etc/tmpfiles.d/${name}.conf`)).code, 0, 'no tmpfiles.d file');
    assert.equal((await inside(runtime, 'list', '-q')).stdout.trim(), '', `no ${runtime} state`);
  };

  const journal = (name: string) => host.journal(`${name}.service`, 40);

  /** Installs a notifying corpus image and proves it became active only after its READY=1. */
  const activeAfterReady = async (entry: CorpusEntry, runtime: 'runc' | 'crun') => {
    const name = nameOf(entry.id);
    const r = await install('--name', name, ...(runtime === 'crun' ? ['--runtime', 'crun'] : []), `oci:${env.layout}:${entry.id}`);
    assert.equal(r.code, 0, `${r.stderr}\n${await journal(name)}`);
    assert.equal(await prop(name, 'ActiveState'), 'active');
    assert.equal(await prop(name, 'Type'), 'notify');
    const stampFile = entry.readyStamp!.replace('NAME', name);
    const stamp = Number((await inside('cat', stampFile)).stdout.trim());
    const started = await num(name, 'ExecMainStartTimestampMonotonic');
    const active = await num(name, 'ActiveEnterTimestampMonotonic');
    assert.ok(stamp > 0 && started > 0, `stamp ${stamp}, start ${started}`);
    assert.ok(stamp - started >= 2_000_000, `READY=1 (${stamp}) came after the stand-in's 2 s delay from the start (${started})`);
    assert.ok(active >= stamp, `active (${active}) not before READY=1 (${stamp})`);
    // The runtime runs the container, and it is the one the unit names.
    assert.match(await prop(name, 'ExecStart'), new RegExp(`/${runtime} run --bundle`));
    assert.equal(JSON.parse((await inside(runtime, 'state', name)).stdout).status, 'running');
    const u = await env.berth('uninstall', name);
    assert.equal(u.code, 0, u.stderr);
    await nothingLeft(name, runtime);
  };

  for (const runtime of ['runc', 'crun'] as const) {
    it(`flannel, docker-centos and net-snmp templates, unchanged, are active only after READY=1 (${runtime})`, async () => {
      for (const id of ['flannel', 'docker-centos', 'net-snmp']) await activeAfterReady(CORPUS.find((e) => e.id === id)!, runtime);
    });
  }

  it('a notifying daemon that exits before READY=1 fails the install through its exit, exit 7, leaving nothing', async (t) => {
    const name = 'corpus-early';
    const t0 = Date.now();
    const r = await install('--name', name, `oci:${env.layout}:flannel-early`);
    const seconds = (Date.now() - t0) / 1000;
    t.diagnostic(`install failed after ${seconds.toFixed(1)} s (TimeoutStartSec=60)`);
    assert.equal(r.code, 7, r.stderr);
    assert.match(r.stderr, new RegExp(`${name}.service failed to start .*the install was undone`));
    assert.match(r.stderr, /exiting with 3 before READY=1/, 'the journal lines are shown');
    const log = await host.journal(`${name}.service`, 200);
    assert.match(log, /Main process exited, code=exited, status=3/);
    assert.match(log, /Failed with result 'exit-code'/);
    assert.doesNotMatch(log, /timed out|Failed with result 'timeout'/);
    await nothingLeft(name);
    for (const f of ['/etc/sysconfig/flanneld', '/etc/flanneld/README']) {
      if (absent.includes(path.dirname(f)) || absent.includes(f)) assert.equal(existsSync(f), false, `host file ${f} removed`);
    }
    // Not checked: /run/NAME, made by the template's `D ${RUN_DIRECTORY}/${NAME}` tmpfiles line, stays
    // (berth never removes what tmpfiles lines created; a reboot empties /run).
  });

  for (const entry of CORPUS) {
    if (entry.runs === 'once') {
      it(`${entry.id} (${entry.upstream.join(', ')}): a command that exits 0 at once is no service: the install fails (exit 7) and leaves nothing`, async () => {
        const name = nameOf(entry.id);
        const r = await install('--name', name, `oci:${env.layout}:${entry.id}`);
        assert.equal(r.code, 7, r.stderr);
        assert.match(r.stderr, /Version: 0\.0-berth-corpus/, 'it did run');
        // Racy by nature: systemd either finds the PID from the PID file gone (result 'protocol') or
        // sees it exit 0 at once ("Deactivated successfully"); berth refuses both: no service runs.
        assert.match(r.stderr, /failed to start/);
        await nothingLeft(name);
        const kept = await install('--name', name, '--no-start', `oci:${env.layout}:${entry.id}`);
        assert.equal(kept.code, 0, `${kept.stderr}: installs with --no-start, as a tool to run by hand`);
        assert.equal((await env.berth('uninstall', name)).code, 0);
        await nothingLeft(name);
      });
      continue;
    }
    it(`${entry.id} (${entry.upstream.join(', ')}): installs${entry.runs === 'daemon' ? ', restarts after kill -9' : ''}, uninstalls without a trace`, async () => {
      const name = nameOf(entry.id);
      const r = await install('--name', name, `oci:${env.layout}:${entry.id}`);
      assert.equal(r.code, 0, `${r.stderr}\n${await journal(name)}`);
      assert.equal(await prop(name, 'UnitFileState'), 'enabled');
      if (entry.runs === 'condition') {
        assert.equal(await prop(name, 'ActiveState'), 'inactive');
        assert.equal(await prop(name, 'ConditionResult'), 'no');
      } else {
        assert.equal(await prop(name, 'ActiveState'), 'active');
        const restarts = await num(name, 'NRestarts');
        const state = JSON.parse((await inside('runc', 'state', name)).stdout) as { pid: number; status: string };
        assert.equal(state.status, 'running');
        assert.equal((await inside('kill', '-9', String(state.pid))).code, 0);
        await waitFor(async () => ((await num(name, 'NRestarts')) > restarts ? true : undefined), 90_000);
        await waitFor(async () => ((await prop(name, 'ActiveState')) === 'active' ? true : undefined), 90_000).catch(async (e: unknown) => {
          throw new Error(`${String(e)}\n${await journal(name)}`);
        });
        const again = JSON.parse((await inside('runc', 'state', name)).stdout) as { pid: number; status: string };
        assert.equal(again.status, 'running');
        assert.notEqual(again.pid, state.pid, 'a new container');
      }
      const u = await env.berth('uninstall', name);
      assert.equal(u.code, 0, u.stderr);
      await nothingLeft(name);
    });
  }
});
