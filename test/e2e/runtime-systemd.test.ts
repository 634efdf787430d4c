/**
 * The systemd backend (`--runtime systemd`): systemd itself runs the
 * image's process with RootDirectory= the read-only checkout.
 *  - etcd -> flannel (Type=notify) -> docker stand-ins, applied from a plan
 *    with `runtime: systemd`: active, in order (etcd's readiness probe holds
 *    flannel back), data in the state directory, a write to the root fails,
 *    after a reboot too; no runc or crun anywhere (ExecStart=, the cgroups'
 *    processes, the journal); a --ready-cmd probe runs inside the service;
 *  - one image, one container per backend: the same files, environment,
 *    user, groups, capabilities (/proc/PID/status) and mounts as far as the
 *    backend can express them;
 *  - a config berth cannot translate is refused naming the field, leaving
 *    nothing; an image's label berth.runtime=systemd asks for the backend;
 *    `berth update --runtime` switches backends in a new slot, and back.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { buildNotifyExec } from '../fixtures/atomic-corpus.ts';
import { buildImage, pushImage, type FixtureImageSpec } from '../fixtures/oci-image.ts';
import { atomicServiceTemplate, bindMount, configTemplate } from '../fixtures/system-images.ts';
import { TestRegistry, unusedPort } from '../harness/registry.ts';
import { TestHost } from '../harness/test-host.ts';
import { waitFor } from '../harness/wait.ts';

const BERTH = fileURLToPath(new URL('../../bin/berth.js', import.meta.url));
const PATH_ENV = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const DELAY_S = 3;

/** Read-only root check every stand-in does at start: a write to / must fail. */
const ROOT_CHECK = 'if touch /.berth-write-test 2>/dev/null; then echo "$0: ROOT WRITABLE"; else echo "$0: root read-only"; fi';

interface ImageOptions {
  script: string;
  env?: string[];
  defaults?: Record<string, string>;
  labels?: Record<string, string>;
  service?: string[];
  mounts?: ReturnType<typeof bindMount>[];
  extraFiles?: FixtureImageSpec['layers'];
  tmpfiles?: string;
  /** Edit config.json.template's object before it is written. */
  edit?: (spec: Record<string, any>) => void;
}

function image(o: ImageOptions): FixtureImageSpec {
  const spec = JSON.parse(configTemplate({ args: ['/usr/bin/run.sh'], env: [...(o.env ?? []), PATH_ENV], mounts: o.mounts ?? [] })) as Record<string, any>;
  o.edit?.(spec);
  return {
    layers: [
      [
        { path: 'usr/bin/run.sh', content: `#!/bin/sh\ntrap 'exit 0' TERM\n${ROOT_CHECK}\n${o.script}`, executable: true },
        { path: 'exports/manifest.json', content: JSON.stringify({ version: '1.0', defaultValues: o.defaults ?? {} }) },
        { path: 'exports/service.template', content: atomicServiceTemplate({ description: 'systemd-backend stand-in $NAME', service: o.service ?? [] }) },
        { path: 'exports/config.json.template', content: `${JSON.stringify(spec, null, 2)}\n` },
        ...(o.tmpfiles === undefined ? [] : [{ path: 'exports/tmpfiles.template', content: o.tmpfiles }]),
      ],
      ...(o.extraFiles ?? []),
    ],
    config: { Cmd: ['/usr/bin/run.sh'], Env: [PATH_ENV], Labels: { 'atomic.type': 'system', ...(o.labels ?? {}) } },
  };
}

/** etcd's stand-in: counts its starts in its state directory, answers HTTP on $PORT only after $DELAY s. */
const etcd = () =>
  image({
    script: `echo start >> /var/lib/etcd/starts
echo "etcd: starting, answering in $DELAY s"
sleep "$DELAY" & wait $!
mkdir -p /tmp/www && echo ok > /tmp/www/index.html
httpd -f -p "127.0.0.1:$PORT" -h /tmp/www & wait
`,
    env: ['PORT=$PORT', 'DELAY=$DELAY'],
    defaults: { PORT: '2379', DELAY: String(DELAY_S) },
    // Not STATE_DIRECTORY/NAME: the host's etcd-server package owns /var/lib/etcd (etcd:etcd, 0700).
    mounts: [bindMount('${STATE_DIRECTORY}/${NAME}-standin', '/var/lib/etcd')],
  });

/** flannel's stand-in: Type=notify; says whether etcd answered, then READY=1 through systemd's socket. */
const flannel = (notifyExec: Buffer) =>
  image({
    script: `if nc 127.0.0.1 "$ETCD_PORT" </dev/null; then echo "flannel: etcd answering at start"; else echo "flannel: etcd NOT answering at start"; fi
exec /usr/bin/notify-exec --delay 1 -- /bin/sh -c 'trap "exit 0" TERM; while :; do sleep 3600 & wait $!; done'
`,
    env: ['ETCD_PORT=$ETCD_PORT'],
    defaults: { ETCD_PORT: '2379' },
    service: ['Type=notify'],
    extraFiles: [[{ path: 'usr/bin/notify-exec', content: notifyExec, mode: 0o755 }]],
  });

/** docker's stand-in: marks /tmp/started after a second (its --ready-cmd looks for it inside the service). */
const docker = () => image({ script: 'echo "docker: started"\n(sleep 1; echo yes > /tmp/started) &\nsleep 100000 & wait $!\n' });

/** The side-by-side image: a non-root user with groups and an ambient capability, binds and tmpfs. */
const compare = (labels: Record<string, string> = {}) =>
  image({
    script: 'echo "compare: running"\nsleep 100000 & wait $!\n',
    env: ['GREETING=hello world', 'HOME=/srv'],
    labels,
    mounts: [bindMount('${STATE_DIRECTORY}/${NAME}', '/var/lib/data'), bindMount('/etc/os-release', '/etc/host-release', true)],
    tmpfiles: 'd ${STATE_DIRECTORY}/${NAME} 0755 4242 4242 - -\n',
    edit: (s) => {
      s.process.user = { uid: 4242, gid: 4242, additionalGids: [4242, 4343, 4444] };
      const caps = ['CAP_NET_BIND_SERVICE'];
      s.process.capabilities = { bounding: ['CAP_KILL', 'CAP_NET_BIND_SERVICE'], effective: caps, permitted: caps, inheritable: caps, ambient: caps };
      s.process.rlimits = [{ type: 'RLIMIT_NOFILE', soft: 1000, hard: 2000 }];
      s.process.cwd = '/tmp';
    },
  });

/** A config the backend cannot express: a device node. */
const withDevice = () =>
  image({
    script: 'sleep 100000 & wait $!\n',
    edit: (s) => {
      s.linux.devices = [{ path: '/dev/fuse', type: 'c', major: 10, minor: 229, fileMode: 438, uid: 0, gid: 0 }];
    },
  });

describe('--runtime systemd: systemd runs the container itself', () => {
  let host: TestHost;
  let registry: TestRegistry;
  let work: string;
  let root: string;
  let policy: string;
  let port = 0;

  const berth = (...args: string[]) => host.exec(process.execPath, [BERTH, '--root', root, ...args], { timeoutMs: 240_000 });
  const ref = (repo: string) => `docker://${registry.host}/native/${repo}:1`;
  const sh = async (script: string) => {
    const r = await host.exec('sh', ['-c', script]);
    assert.equal(r.code, 0, `${script}: ${r.stderr}`);
    return r.stdout;
  };
  const usec = async (unit: string, prop: string) => Number(await host.unitProperty(unit, prop));
  const mainPid = async (unit: string) => Number(await host.unitProperty(unit, 'MainPID'));

  before(async () => {
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'berth-native-'));
    root = path.join(work, 'root');
    policy = path.join(work, 'policy.json');
    await fs.writeFile(policy, JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }));
    port = await unusedPort();
    const notifyExec = await buildNotifyExec();
    [host, registry] = await Promise.all([TestHost.start(), TestRegistry.start()]);
    const layout = path.join(work, 'layout');
    const specs: Record<string, FixtureImageSpec> = {
      etcd: etcd(),
      flannel: flannel(notifyExec),
      docker: docker(),
      compare: compare(),
      labelled: compare({ 'berth.runtime': 'systemd' }),
      device: withDevice(),
    };
    for (const [name, spec] of Object.entries(specs)) await pushImage(await buildImage(layout, name, spec), registry.host, `native/${name}`, '1');
  });

  after(async () => {
    await host?.stop();
    await registry?.stop();
    await host?.assertClean();
    if (work) await fs.rm(work, { recursive: true, force: true });
  });

  /** Every process of the unit's cgroup (and below), with its executable; the unit's Exec lines. */
  async function noOciRuntime(unit: string): Promise<void> {
    const show = await sh(`systemctl show -p ExecStart -p ExecStartPre -p ExecStartPost -p ExecMainPID -p ControlGroup ${unit}`);
    assert.doesNotMatch(show, /runc|crun/, show);
    const cgroup = /^ControlGroup=(.+)$/m.exec(show)![1]!;
    const exes = await sh(`for d in /sys/fs/cgroup/systemd /sys/fs/cgroup/unified /sys/fs/cgroup; do [ -e "$d${cgroup}/cgroup.procs" ] && { find "$d${cgroup}" -name cgroup.procs -exec cat {} + | while read p; do echo "$p $(readlink /proc/$p/exe)"; done; break; }; done`);
    const lines = exes.trim().split('\n').filter((l) => l !== '');
    assert.ok(lines.length > 0, `${unit}: processes in ${cgroup}`);
    for (const l of lines) assert.doesNotMatch(l, /runc|crun/, `${unit}: ${l}`);
    const mainPidOf = /^ExecMainPID=(\d+)$/m.exec(show)![1]!;
    assert.ok(lines.some((l) => l.startsWith(`${mainPidOf} `)), `${unit}: the main process ${mainPidOf} is in the cgroup: ${exes}`);
    // What the processes of this start wrote (an earlier start may have been runc's: update --runtime).
    const invocation = (await host.unitProperty(unit, 'InvocationID')).trim();
    const output = await sh(`journalctl --no-pager -o short _SYSTEMD_INVOCATION_ID=${invocation}`);
    assert.match(output, /run\.sh/, `${unit}: the invocation's output`);
    assert.doesNotMatch(output, /runc|crun/, output);
  }

  /** A write to the root fails inside the running service; the stand-in saw the same at its start. */
  async function rootReadOnly(unit: string): Promise<void> {
    const pid = await mainPid(unit);
    const r = await host.exec('nsenter', ['--target', String(pid), '--mount', '--root', '/bin/touch', '/.berth-write-test']);
    assert.notEqual(r.code, 0, `${unit}: a write to / succeeded`);
    assert.match(r.stderr, /Read-only file system/, r.stderr);
    const journal = await host.journal(unit, 200);
    assert.match(journal, /root read-only/, journal);
    assert.doesNotMatch(journal, /ROOT WRITABLE/, journal);
  }

  async function stackHolds(): Promise<void> {
    for (const u of ['etcd', 'flannel', 'docker']) assert.equal(await host.unitProperty(`${u}.service`, 'ActiveState'), 'active', u);
    const etcdStarted = await usec('etcd.service', 'ExecMainStartTimestampMonotonic');
    const etcdActive = await usec('etcd.service', 'ActiveEnterTimestampMonotonic');
    assert.ok(etcdActive - etcdStarted >= (DELAY_S - 0.5) * 1e6, 'etcd became active only once it answered');
    assert.ok((await usec('flannel.service', 'ExecMainStartTimestampMonotonic')) >= etcdActive, 'flannel started after etcd was ready');
    assert.ok((await usec('docker.service', 'ExecMainStartTimestampMonotonic')) >= (await usec('flannel.service', 'ActiveEnterTimestampMonotonic')), 'docker started after flannel was ready (READY=1)');
    const flannelJournal = await host.journal('flannel.service');
    assert.match(flannelJournal, /flannel: etcd answering at start/, flannelJournal);
    assert.doesNotMatch(flannelJournal, /NOT answering/, flannelJournal);
    assert.equal(await host.unitProperty('flannel.service', 'Type'), 'notify');
    for (const u of ['etcd', 'flannel', 'docker']) {
      await noOciRuntime(`${u}.service`);
      await rootReadOnly(`${u}.service`);
      assert.match(await host.unitProperty(`${u}.service`, 'RootDirectory'), new RegExp(`/containers/${u}\\.[01]/rootfs$`));
    }
  }

  it('etcd -> flannel -> docker from a plan with runtime: systemd: active, ordered, data in the state directory, read-only root, no runc; after a reboot too', async () => {
    const plan = path.join(work, 'plan.yaml');
    await fs.writeFile(
      plan,
      `version: 1
defaults: { tlsVerify: false, runtime: systemd }
containers:
  etcd:
    image: ${ref('etcd')}
    set: { PORT: ${port} }
    ready: { http: "http://127.0.0.1:${port}/", timeout: 60 }
  flannel:
    image: ${ref('flannel')}
    after: [etcd]
    requires: [etcd]
    set: { ETCD_PORT: ${port} }
  docker:
    image: ${ref('docker')}
    after: [flannel]
    requires: [flannel]
    ready: { cmd: "test -s /tmp/started", timeout: 60 }
`,
    );
    const r = await berth('apply', '--policy', policy, '--settle', '1', plan);
    assert.equal(r.code, 0, r.stderr);
    await stackHolds();
    // docker's --ready-cmd ran inside the service: /tmp/started is in its own tmpfs, not the host's.
    assert.match(await host.journal('docker.service'), /ready: cmd test -s \/tmp\/started passed/);
    await assert.rejects(fs.access('/tmp/started'));
    // Data in the state directory (the bind mount's source on the host, in the test host's /var overlay).
    const starts = await sh('cat /var/lib/etcd-standin/starts');
    assert.equal(starts.trim().split('\n').length, 1, starts);
    const status = await berth('status', 'etcd', '--json');
    assert.equal(status.code, 0, status.stderr);
    const s = JSON.parse(status.stdout) as { runtime: { name: string; from: string; notes: string[] } };
    assert.equal(s.runtime.name, 'systemd');
    assert.equal(s.runtime.from, 'option');
    assert.ok(s.runtime.notes.some((n) => /pid namespace not applied/.test(n)), s.runtime.notes.join('\n'));
    assert.match((await berth('status', 'etcd')).stdout, /^runtime: systemd \(no OCI runtime/m);

    await host.reboot();
    await waitFor(async () => ((await host.unitProperty('docker.service', 'ActiveState')) === 'active' ? true : undefined), 120_000);
    await stackHolds();
    assert.equal((await sh('cat /var/lib/etcd-standin/starts')).trim().split('\n').length, 2, 'the same state directory after the reboot');
    // A second apply of the same plan changes nothing: the runtime recorded is the plan's.
    const started = await usec('etcd.service', 'ExecMainStartTimestampMonotonic');
    const again = await berth('apply', '--policy', policy, '--settle', '1', plan);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(await usec('etcd.service', 'ExecMainStartTimestampMonotonic'), started, 'not restarted');
    assert.equal((await berth('uninstall', '--all')).code, 0);
  });

  it('one image, one container per backend: same files, environment, user, groups, capabilities, limits and mounts', async () => {
    // systemd looks numeric IDs up on the host: without the user, the backend refuses before installing.
    const refused = await berth('install', '--policy', policy, '--tls-verify=false', '--name', 'cmp-systemd', '--runtime', 'systemd', ref('compare'));
    assert.equal(refused.code, 2, refused.stderr);
    assert.match(refused.stderr, /^berth: error: \/exports\/config\.json\.template: process\.user\.uid cannot run with --runtime systemd: user 4242 does not exist on this host/m);
    await sh('groupadd -g 4242 u4242 && groupadd -g 4343 g4343 && groupadd -g 4444 g4444 && useradd -u 4242 -g 4242 -M -N -s /bin/false -d / u4242');
    for (const [name, runtime] of [['cmp-runc', 'runc'], ['cmp-systemd', 'systemd']] as const) {
      const r = await berth('install', '--policy', policy, '--tls-verify=false', '--name', name, '--runtime', runtime, ref('compare'));
      assert.equal(r.code, 0, r.stderr);
    }
    const pids = { runc: await mainPid('cmp-runc.service'), systemd: await mainPid('cmp-systemd.service') };
    const status = async (pid: number) => {
      const text = await sh(`cat /proc/${pid}/status`);
      const field = (k: string) => new RegExp(`^${k}:\\s*(.*)$`, 'm').exec(text)![1]!.trim().split(/\s+/).join(' ');
      return Object.fromEntries(['Uid', 'Gid', 'Groups', 'CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb', 'NoNewPrivs'].map((k) => [k, field(k)]));
    };
    const [a, b] = [await status(pids.runc), await status(pids.systemd)];
    assert.deepEqual(b, a, 'the same identity and capabilities');
    assert.equal(a['Uid'], '4242 4242 4242 4242');
    assert.equal(a['Groups'], '4242 4343 4444');
    assert.equal(a['CapAmb'], '0000000000000400', 'CAP_NET_BIND_SERVICE');
    assert.equal(a['CapBnd'], '0000000000000420', 'CAP_KILL and CAP_NET_BIND_SERVICE');
    // Environment: what config.json says, nothing of systemd's own.
    const env = async (pid: number) => (await sh(`tr '\\0' '\\n' < /proc/${pid}/environ`)).trim().split('\n').sort();
    assert.deepEqual(await env(pids.systemd), await env(pids.runc));
    assert.ok((await env(pids.runc)).includes('GREETING=hello world'));
    // Working directory and limits.
    assert.equal(await sh(`readlink /proc/${pids.systemd}/cwd`), await sh(`readlink /proc/${pids.runc}/cwd`));
    const nofile = async (pid: number) => (await sh(`grep 'Max open files' /proc/${pid}/limits`)).replace(/\s+/g, ' ').trim();
    assert.equal(await nofile(pids.systemd), await nofile(pids.runc));
    assert.match(await nofile(pids.runc), /1000 2000/);
    // The same files: every regular file of the root file system, with mode, owner and size.
    const files = async (pid: number) => sh(`cd /proc/${pid}/root && find . -xdev -type f -printf '%P %m %U %G %s\\n' | sort`);
    const [fa, fb] = [await files(pids.runc), await files(pids.systemd)];
    assert.ok(fa.includes('usr/bin/run.sh 755 0 0'), fa.slice(0, 500));
    assert.equal(fb, fa);
    // Mounts: each of config.json's destinations is mounted in both, with the same file system type.
    const mounts = async (pid: number) => {
      const m = new Map<string, string>();
      for (const line of (await sh(`cat /proc/${pid}/mountinfo`)).trim().split('\n')) {
        const f = line.split(' ');
        const sep = f.indexOf('-');
        m.set(f[4]!, f[sep + 1]!);
      }
      return m;
    };
    const [ma, mb] = [await mounts(pids.runc), await mounts(pids.systemd)];
    for (const dest of ['/', '/proc', '/dev', '/dev/pts', '/dev/shm', '/dev/mqueue', '/sys', '/tmp', '/run', '/var/lib/data', '/etc/host-release']) {
      assert.ok(ma.has(dest), `runc: ${dest} mounted`);
      assert.ok(mb.has(dest), `systemd: ${dest} mounted`);
      assert.equal(mb.get(dest), ma.get(dest), `${dest}: ${ma.get(dest)} (runc) vs ${mb.get(dest)} (systemd)`);
    }
    // Writes: the state directory is writable and shared with the host, the read-only bind and the root are not.
    for (const [name, pid] of [['cmp-runc', pids.runc], ['cmp-systemd', pids.systemd]] as const) {
      const enter = ['--target', String(pid), '--mount', '--root', '--setuid', '4242', '--setgid', '4242'];
      assert.equal((await host.exec('nsenter', [...enter, '/bin/sh', '-c', `echo ${name} > /var/lib/data/mark`])).code, 0, `${name}: write to the state directory`);
      assert.equal((await sh(`cat /var/lib/${name}/mark`)).trim(), name);
      assert.match((await host.exec('nsenter', [...enter, '/bin/touch', '/etc/host-release'])).stderr, /Read-only file system/);
      assert.match((await host.exec('nsenter', ['--target', String(pid), '--mount', '--root', '/bin/touch', '/x'])).stderr, /Read-only file system/);
    }
    await noOciRuntime('cmp-systemd.service');
    for (const name of ['cmp-runc', 'cmp-systemd']) assert.equal((await berth('uninstall', name)).code, 0);
  });

  it('a config berth cannot translate is refused naming the field, and nothing is left', async () => {
    const r = await berth('install', '--policy', policy, '--tls-verify=false', '--name', 'device', '--runtime', 'systemd', ref('device'));
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /^berth: error: \/exports\/config\.json\.template: linux\.devices cannot run with --runtime systemd: .* \(use --runtime runc \(or crun\) for this image\)$/m);
    assert.equal(r.stderr.split('\n').filter((l) => l.startsWith('berth: error:')).length, 1, r.stderr);
    assert.doesNotMatch(r.stderr, /^\s+at /m, 'no stack trace');
    assert.equal((await host.exec('test', ['-e', '/etc/systemd/system/device.service'])).code, 1, 'no unit');
    assert.equal((await host.exec('test', ['-e', '/etc/tmpfiles.d/device.conf'])).code, 1, 'no tmpfiles');
    const left = (await fs.readdir(path.join(root, 'containers')).catch(() => [] as string[])).filter((e) => e.startsWith('device') || e.startsWith('.'));
    assert.deepEqual(left.filter((e) => !e.startsWith('.lock') && !e.startsWith('.intent')), [], `left in containers/: ${left.join(' ')}`);
    // The same image runs with runc.
    const ok = await berth('install', '--policy', policy, '--tls-verify=false', '--name', 'device', '--dry-run', ref('device'));
    assert.equal(ok.code, 0, ok.stderr);
  });

  it('an image label asks for the backend; update --runtime switches backends in a new slot, and back', async () => {
    let r = await berth('install', '--policy', policy, '--tls-verify=false', '--name', 'lab', ref('labelled'));
    assert.equal(r.code, 0, r.stderr);
    let s = JSON.parse((await berth('status', 'lab', '--json')).stdout) as { activeSlot: number; runtime: { name: string; from: string } };
    assert.deepEqual([s.runtime.name, s.runtime.from], ['systemd', 'label']);
    await noOciRuntime('lab.service');
    // An explicit --runtime wins over the label.
    r = await berth('update', 'lab', '--runtime', 'runc', '--tls-verify=false', '--settle', '1', '--health-cmd', 'test -d /var/lib/data');
    assert.equal(r.code, 0, r.stderr);
    s = JSON.parse((await berth('status', 'lab', '--json')).stdout);
    assert.deepEqual([s.activeSlot, s.runtime.name, s.runtime.from], [1, 'runc', 'option']);
    assert.match(await host.unitProperty('lab.service', 'ExecStart'), /runc/);
    assert.equal(await host.unitProperty('lab.service', 'ActiveState'), 'active');
    // And back, with a health command that runs inside the systemd-backend service.
    r = await berth('update', 'lab', '--runtime', 'systemd', '--tls-verify=false', '--settle', '1', '--health-cmd', 'test "$(id -u)" = 4242');
    assert.equal(r.code, 0, r.stderr);
    s = JSON.parse((await berth('status', 'lab', '--json')).stdout);
    assert.deepEqual([s.activeSlot, s.runtime.name], [0, 'systemd']);
    await noOciRuntime('lab.service');
    // Rollback is a slot switch like any other: runc again.
    r = await berth('rollback', 'lab');
    assert.equal(r.code, 0, r.stderr);
    s = JSON.parse((await berth('status', 'lab', '--json')).stdout);
    assert.deepEqual([s.activeSlot, s.runtime.name], [1, 'runc']);
    assert.equal(await host.unitProperty('lab.service', 'ActiveState'), 'active');
    assert.equal((await berth('uninstall', 'lab')).code, 0);
  });
});
