/**
 * The systemd backend's translation table (src/render/native-keys.ts), as
 * fixtures: each config.json field becomes its unit keys, each refusal
 * names its field and points at --runtime runc; and every image of the
 * atomic corpus either renders a unit that `systemd-analyze verify`
 * accepts, or is refused before anything is installed, naming the field.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BerthError } from '../../src/errors.ts';
import { digestOf } from '../../src/image/digest.ts';
import type { ImageConfig } from '../../src/image/manifest.ts';
import { renderContainer } from '../../src/render/container.ts';
import { readExports } from '../../src/render/exports.ts';
import { NATIVE_ROWS, parseHostIds, translateSpec, type UnitEntry } from '../../src/render/native-keys.ts';
import type { RuntimeSpec } from '../../src/render/oci-config.ts';
import { readBuiltinTemplate } from '../../src/render/templates.ts';
import { UNIT_KEYS } from '../../src/render/unit-keys.ts';
import { UnitFile } from '../../src/render/unit-file.ts';
import { chooseRuntime } from '../../src/runtime/runtime.ts';
import { berthCommand } from '../../src/self.ts';
import { CORPUS, PLACEHOLDER_BINARIES } from '../fixtures/atomic-corpus.ts';
import type { FixtureImageSpec } from '../fixtures/oci-image.ts';
import { atomicServiceTemplate, bindMount, configTemplate, writeSpecFiles } from '../fixtures/system-images.ts';
import { hasCommand } from '../harness/util.ts';

const ROOTFS = '/var/lib/berth/containers/box.0/rootfs';

async function builtinSpec(): Promise<RuntimeSpec> {
  const spec = JSON.parse(await readBuiltinTemplate('config.json')) as RuntimeSpec;
  spec.process.args = ['/usr/bin/daemon', '--flag'];
  return spec;
}

const fixtureSpec = (mounts = [bindMount('/var/lib/box', '/var/lib/box'), bindMount('/etc/box', '/etc/box', true)]) =>
  JSON.parse(configTemplate({ args: ['/usr/bin/run.sh', 'a b'], env: ['PATH=/bin', 'GREETING=100% "hi"'], mounts, cwd: '/srv' })) as RuntimeSpec;

function translate(spec: RuntimeSpec): UnitEntry[] {
  return translateSpec(spec, { rootDirectory: ROOTFS }).entries;
}

const has = (entries: UnitEntry[], key: string, value: string) => assert.ok(entries.some(([k, v]) => k === key && v === value), `${key}=${value} in\n${entries.map((e) => e.join('=')).join('\n')}`);

/** A refusal: USAGE, the field named, the hint to use an OCI runtime. */
function refuses(spec: RuntimeSpec, field: RegExp): void {
  assert.throws(
    () => translate(spec),
    (e: unknown) => {
      assert.ok(e instanceof BerthError, String(e));
      assert.equal(e.code, 'USAGE');
      assert.match(e.message, field);
      assert.match(e.message, /cannot run with --runtime systemd/);
      assert.match(e.hint ?? '', /--runtime runc/);
      return true;
    },
  );
}

describe('native-keys: the table', () => {
  it('names only keys systemd knows (the unit key table of systemd 252)', () => {
    for (const row of NATIVE_ROWS) for (const key of row.keys) assert.ok(UNIT_KEYS.Service.has(key), `${row.field}: ${key}`);
    assert.equal(new Set(NATIVE_ROWS.map((r) => r.field)).size, NATIVE_ROWS.length, 'one row per field');
  });
});

describe('native-keys: each field becomes its unit keys', () => {
  it('root: RootDirectory= the checkout, read-only (ProtectSystem=strict)', async () => {
    const e = translate(await builtinSpec());
    has(e, 'RootDirectory', ROOTFS);
    has(e, 'ProtectSystem', 'strict');
  });
  it('process: env quoted (% and " escaped), HOME defaulted, systemd\'s own variables unset; cwd; noNewPrivileges', () => {
    const e = translate(fixtureSpec());
    has(e, 'Environment', '"PATH=/bin"');
    has(e, 'Environment', '"GREETING=100%% \\"hi\\""');
    has(e, 'Environment', '"HOME=/"');
    has(e, 'UnsetEnvironment', 'LANG INVOCATION_ID JOURNAL_STREAM SYSTEMD_EXEC_PID USER LOGNAME SHELL');
    has(e, 'WorkingDirectory', '/srv');
    has(e, 'NoNewPrivileges', 'yes');
    assert.deepEqual(translateSpec(fixtureSpec(), { rootDirectory: ROOTFS }).execStart, ['/usr/bin/run.sh', 'a b']);
  });
  it('user: User=, Group=, SupplementaryGroups=, UMask= (numeric)', () => {
    const spec = fixtureSpec();
    spec.process.user = { uid: 4242, gid: 4343, additionalGids: [10, 20], umask: 0o027 } as RuntimeSpec['process']['user'];
    spec.process['capabilities'] = { bounding: ['CAP_KILL', 'CAP_NET_BIND_SERVICE'], effective: ['CAP_KILL'], permitted: ['CAP_KILL'], ambient: ['CAP_KILL'], inheritable: ['CAP_KILL'] };
    const e = translate(spec);
    has(e, 'User', '4242');
    has(e, 'Group', '4343');
    has(e, 'SupplementaryGroups', '10 20');
    has(e, 'UMask', '0027');
    has(e, 'CapabilityBoundingSet', 'CAP_KILL CAP_NET_BIND_SERVICE');
    has(e, 'AmbientCapabilities', 'CAP_KILL');
  });
  it('capabilities of root: the bounding set (effective and permitted equal it); an empty one drops all', async () => {
    has(translate(fixtureSpec()), 'CapabilityBoundingSet', 'CAP_AUDIT_WRITE CAP_KILL CAP_NET_BIND_SERVICE');
    const spec = fixtureSpec();
    spec.process['capabilities'] = { bounding: [], effective: [], permitted: [] };
    assert.match(translate(spec).find(([k]) => k === 'CapabilityBoundingSet')![1], /^~CAP_CHOWN .*CAP_CHECKPOINT_RESTORE$/);
  });
  it('rlimits: Limit*=soft:hard, the maximum as infinity', () => {
    const spec = fixtureSpec();
    spec.process['rlimits'] = [{ type: 'RLIMIT_NOFILE', soft: 1024, hard: 4096 }, { type: 'RLIMIT_CORE', soft: 0, hard: 18446744073709551615 }];
    const e = translate(spec);
    has(e, 'LimitNOFILE', '1024:4096');
    has(e, 'LimitCORE', '0:infinity');
  });
  it('mounts: binds read-write and read-only, tmpfs with options, /proc /sys /dev as API file systems', () => {
    const e = translate(fixtureSpec());
    has(e, 'BindPaths', '/var/lib/box:/var/lib/box:rbind');
    has(e, 'ReadWritePaths', '/var/lib/box');
    has(e, 'BindReadOnlyPaths', '/etc/box:/etc/box:rbind');
    has(e, 'TemporaryFileSystem', '/tmp:nosuid,nodev,mode=1777');
    has(e, 'TemporaryFileSystem', '/run:nosuid,nodev,mode=755');
    has(e, 'TemporaryFileSystem', '/dev/shm:nosuid,noexec,nodev,mode=1777,size=65536k');
    has(e, 'MountAPIVFS', 'yes');
    has(e, 'PrivateDevices', 'yes');
    has(e, 'ProtectKernelTunables', 'yes');
    has(e, 'ProtectControlGroups', 'yes');
    assert.equal(e.filter(([k]) => k === 'MountAPIVFS').length, 1, 'once');
  });
  it('a bind with noexec gets NoExecPaths=; nosuid is implied by noNewPrivileges, nodev by the closed device policy', () => {
    const spec = fixtureSpec([{ destination: '/data', type: 'bind', source: '/srv/data', options: ['bind', 'noexec', 'nosuid', 'nodev'] }]);
    const e = translate(spec);
    has(e, 'NoExecPaths', '/data');
    has(e, 'BindPaths', '/srv/data:/data:norbind');
    has(e, 'DevicePolicy', 'closed');
  });
  it('namespaces: ipc, network, uts; pid dropped with a note; masked and read-only paths', () => {
    const spec = fixtureSpec();
    spec.linux!.namespaces = [{ type: 'pid' }, { type: 'ipc' }, { type: 'mount' }, { type: 'network' }, { type: 'uts' }];
    const t = translateSpec(spec, { rootDirectory: ROOTFS });
    has(t.entries, 'PrivateIPC', 'yes');
    has(t.entries, 'PrivateNetwork', 'yes');
    has(t.entries, 'ProtectHostname', 'yes');
    has(t.entries, 'InaccessiblePaths', '-/proc/kcore');
    has(t.entries, 'ReadOnlyPaths', '-/proc/sys');
    assert.ok(t.notes.some((n) => /pid namespace not applied/.test(n)), t.notes.join('\n'));
  });
  it('a user namespace with identity mappings: PrivateUsers=', () => {
    const spec = fixtureSpec();
    spec.linux!.namespaces = [{ type: 'user' }, { type: 'mount' }];
    spec.linux!['uidMappings'] = [{ containerID: 0, hostID: 0, size: 1 }];
    has(translate(spec), 'PrivateUsers', 'yes');
  });
  it('resources: memory, pids, cpu quota', () => {
    const spec = fixtureSpec();
    spec.linux!['resources'] = { devices: [{ allow: false, access: 'rwm' }], memory: { limit: 268435456 }, pids: { limit: 64 }, cpu: { quota: 50000, period: 100000 } };
    const e = translate(spec);
    has(e, 'MemoryMax', '268435456');
    has(e, 'TasksMax', '64');
    has(e, 'CPUQuota', '50%');
  });
  it('seccomp: a plain allow list or deny list of names', () => {
    const spec = fixtureSpec();
    spec.linux!['seccomp'] = { defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: ['read', 'write', 'exit_group'], action: 'SCMP_ACT_ALLOW' }] };
    let e = translate(spec);
    has(e, 'SystemCallFilter', 'read write exit_group');
    has(e, 'SystemCallErrorNumber', 'EPERM');
    spec.linux!['seccomp'] = { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['reboot'], action: 'SCMP_ACT_ERRNO' }] };
    e = translate(spec);
    has(e, 'SystemCallFilter', '~reboot');
  });
  it('CAP_MKNOD under PrivateDevices= is noted', async () => {
    const t = translateSpec(await builtinSpec(), { rootDirectory: ROOTFS });
    assert.ok(t.notes.some((n) => /CAP_MKNOD not in the bounding set/.test(n)), t.notes.join('\n'));
  });
});

describe('native-keys: what cannot be expressed is refused, naming the field', () => {
  const cases: [string, (s: RuntimeSpec) => void, RegExp][] = [
    ['hooks', (s) => (s['hooks'] = { prestart: [{ path: '/bin/true' }] }), /: hooks cannot/],
    ['devices', (s) => (s.linux!['devices'] = [{ path: '/dev/fuse', type: 'c', major: 10, minor: 229 }]), /linux\.devices cannot/],
    ['a device cgroup rule for one device', (s) => (s.linux!['resources'] = { devices: [{ allow: false, access: 'rwm' }, { allow: true, type: 'c', major: 10, minor: 229, access: 'rwm' }] }), /linux\.resources\.devices cannot/],
    ['a seccomp profile with argument filters', (s) => (s.linux!['seccomp'] = { defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: ['personality'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 0, op: 'SCMP_CMP_EQ' }] }] }), /linux\.seccomp\.syscalls\[0\] cannot/],
    ['a seccomp listener', (s) => (s.linux!['seccomp'] = { defaultAction: 'SCMP_ACT_ERRNO', listenerPath: '/run/x.sock', syscalls: [] }), /linux\.seccomp\.listenerPath cannot/],
    ['a cgroup namespace', (s) => s.linux!.namespaces!.push({ type: 'cgroup' }), /linux\.namespaces\[3\] \(cgroup\) cannot/],
    ['joining a network namespace', (s) => s.linux!.namespaces!.push({ type: 'pid', path: '/proc/1/ns/pid' }), /linux\.namespaces\[3\] \(pid\) cannot/],
    ['a hostname', (s) => (s['hostname'] = 'flannel'), /hostname cannot .*"flannel"/],
    ['a terminal', (s) => (s.process.terminal = true), /process\.terminal cannot/],
    ['effective capabilities other than the bounding set of root', (s) => ((s.process['capabilities'] as Record<string, string[]>)['effective'] = ['CAP_KILL']), /process\.capabilities\.effective cannot/],
    ['a non-root user with effective capabilities but no ambient ones', (s) => (s.process.user = { uid: 1000, gid: 1000 }), /process\.capabilities\.effective cannot.*ambient/],
    ['an overlay mount', (s) => s.mounts!.push({ destination: '/data', type: 'overlay', source: 'overlay', options: ['lowerdir=/a'] }), /mounts\[\d+\] \/data cannot .*overlay/],
    ['a bind option systemd has no per-mount form of', (s) => s.mounts!.push({ destination: '/data', type: 'bind', source: '/srv', options: ['rbind', 'nosymfollow'] }), /mounts\[\d+\] \/data cannot.*nosymfollow/],
    ['sysctls', (s) => (s.linux!['sysctl'] = { 'net.ipv4.ip_forward': '1' }), /linux\.sysctl cannot/],
    ['an unknown rlimit', (s) => (s.process['rlimits'] = [{ type: 'RLIMIT_BOGUS', soft: 1, hard: 1 }]), /process\.rlimits\[0\] cannot/],
    ['a field berth does not know', (s) => (s.process['futureThing'] = true), /process\.futureThing cannot .*cannot translate/],
    ['a user namespace with a shifted mapping', (s) => { s.linux!.namespaces!.push({ type: 'user' }); s.linux!['uidMappings'] = [{ containerID: 0, hostID: 100000, size: 65536 }]; }, /linux\.uidMappings cannot/],
  ];
  for (const [what, mutate, field] of cases) {
    it(what, () => {
      const spec = fixtureSpec();
      mutate(spec);
      refuses(spec, field);
    });
  }
});

describe('native-keys: users and groups systemd must find on the host', () => {
  const hostIds = parseHostIds('root:x:0:0::/:/bin/sh\nsvc:x:4242:4242::/:/bin/false\n', 'root:x:0:\nsvc:x:4242:\nextra:x:4343:\n');
  const spec = () => {
    const s = fixtureSpec();
    const caps = ['CAP_KILL'];
    s.process['capabilities'] = { bounding: caps, effective: caps, permitted: caps, ambient: caps };
    s.process.user = { uid: 4242, gid: 4242, additionalGids: [4343] };
    return s;
  };
  it('known IDs pass, with a note on initgroups', () => {
    const t = translateSpec(spec(), { rootDirectory: ROOTFS, hostIds });
    has(t.entries, 'User', '4242');
    assert.ok(t.notes.some((n) => /initgroups/.test(n)));
  });
  for (const [what, edit, field] of [
    ['an unknown user', (s: RuntimeSpec) => (s.process.user.uid = 5000), /process\.user\.uid cannot .*user 5000 does not exist on this host/],
    ['an unknown group', (s: RuntimeSpec) => (s.process.user.gid = 5000), /process\.user\.gid cannot .*group 5000/],
    ['an unknown supplementary group', (s: RuntimeSpec) => (s.process.user.additionalGids = [4343, 5001]), /process\.user\.additionalGids\[1\] cannot .*group 5001/],
  ] as const) {
    it(`${what} is refused`, () => {
      const s = spec();
      edit(s);
      assert.throws(() => translateSpec(s, { rootDirectory: ROOTFS, hostIds }), field);
    });
  }
});

describe('the runtime choice', () => {
  it('--runtime wins over the image label; the label over runc; a label names no path', () => {
    assert.deepEqual(chooseRuntime('crun', { 'berth.runtime': 'systemd' }), { name: 'crun', from: 'option' });
    assert.deepEqual(chooseRuntime(undefined, { 'berth.runtime': 'systemd' }), { name: 'systemd', from: 'label' });
    assert.deepEqual(chooseRuntime(undefined, {}), { name: 'runc', from: 'default' });
    assert.throws(() => chooseRuntime(undefined, { 'berth.runtime': '/tmp/evil' }), /names no runtime berth knows/);
  });
});

// ---------------------------------------------------------------------------
// Whole units, rendered as install --runtime systemd would, and verified.

let tmp: string;
let n = 0;
before(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'berth-native-'));
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const HOST_DIRS = ['run/systemd', 'var/run', 'etc', 'var/lib', 'var/log', 'dev', 'sys', 'proc', 'tmp', 'root', 'home', 'opt', 'mnt'];

async function renderNative(spec: FixtureImageSpec, name: string, readiness?: { kind: 'cmd'; target: string; timeoutSec: number }) {
  const rootfs = path.join(tmp, `rootfs-${n}`);
  const hostRoot = path.join(tmp, `host-${n++}`);
  await mkdir(rootfs);
  for (const d of HOST_DIRS) await mkdir(path.join(hostRoot, d), { recursive: true });
  // The kube user of atomic's hosts (the kubernetes packages made it); systemd looks IDs up there.
  await writeFile(path.join(hostRoot, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nkube:x:996:994::/:/sbin/nologin\n');
  await writeFile(path.join(hostRoot, 'etc/group'), 'root:x:0:\nkube:x:994:\n');
  await writeSpecFiles(spec, rootfs, (p) => p === 'exports' || p.startsWith('exports/'));
  const imageConfig: ImageConfig = { architecture: 'amd64', os: 'linux', config: { ...spec.config }, rootfs: { type: 'layers', diff_ids: [digestOf('x')] } };
  const r = await renderContainer({
    name,
    destDir: `/var/lib/berth/containers/${name}`,
    slotDir: `/var/lib/berth/containers/${name}.0`,
    imageName: `docker://registry.example/${name}:latest`,
    imageId: digestOf(name),
    imageConfig,
    exports: await readExports(rootfs),
    set: {},
    runtime: 'systemd',
    ordering: {},
    berth: berthCommand(),
    hostFacts: { selinux: true, capabilities: undefined },
    hostRoot,
    uuid: '00000000-0000-4000-8000-000000000000',
    uid: 0,
    gid: 0,
    ...(readiness ? { readiness } : {}),
  });
  return { ...r, unitFile: UnitFile.parse(r.unit ?? '') };
}

/**
 * systemd-analyze verify of a systemd-backend unit. Its one complaint that
 * does not apply is "Command X is not executable" for the image's command:
 * verify looks on this host, systemd inside RootDirectory=.
 */
function verify(name: string, unit: string, imageCommand: string): string | undefined {
  const file = path.join(tmp, `${name}.service`);
  writeFileSync(file, unit);
  const r = spawnSync('systemd-analyze', ['verify', '--man=no', '--recursive-errors=no', file], { encoding: 'utf8', env: { ...process.env, SYSTEMD_LOG_LEVEL: 'notice' } });
  const lines = `${r.stdout}${r.stderr}`.trim().split('\n').filter((l) => l !== '' && l !== `${name}.service: Command ${imageCommand} is not executable: No such file or directory`);
  return lines.length === 0 ? undefined : `exit ${r.status}: ${lines.join('\n')}`;
}

describe('whole units with --runtime systemd', () => {
  it('an atomic image: $EXEC_START is its command, run in RootDirectory=; host lines keep running on the host', async () => {
    const image: FixtureImageSpec = {
      layers: [[
        { path: 'usr/bin/run.sh', content: '#!/bin/sh\nexec sleep 1000\n', executable: true },
        { path: 'exports/service.template', content: atomicServiceTemplate({ description: 'native $NAME', service: ['ExecStartPre=/bin/mkdir -p /run/native-mark', 'ExecStartPre=-$EXEC_STARTPRE'] }) },
        { path: 'exports/config.json.template', content: configTemplate({ args: ['/usr/bin/run.sh'], env: ['PATH=/usr/bin:/bin'], mounts: [bindMount('/var/lib/native', '/var/lib/native')] }) },
      ]],
      config: { Cmd: ['/usr/bin/run.sh'], Labels: {} },
    };
    const r = await renderNative(image, 'native', { kind: 'cmd', target: 'test -e /run', timeoutSec: 30 });
    const u = r.unitFile;
    assert.equal(u.get('Service', 'Type'), 'exec');
    assert.deepEqual(u.getAll('Service', 'ExecStart'), ['/usr/bin/run.sh']);
    assert.equal(u.get('Service', 'RootDirectory'), '/var/lib/berth/containers/native.0/rootfs', 'the slot\'s own checkout, no symlink');
    assert.deepEqual(u.getAll('Service', 'ExecStop'), [], '$EXEC_STOP dropped');
    assert.deepEqual(u.getAll('Service', 'ExecStartPre'), ['+nsenter --mount=/proc/1/ns/mnt -- /bin/mkdir -p /run/native-mark'], 'the template\'s own line runs on the host; $EXEC_STARTPRE dropped');
    assert.match(u.getAll('Service', 'ExecStartPost')[0]!, /^\+nsenter --mount=\/proc\/1\/ns\/mnt -- .* ready-check --cmd "test -e \/run" --runtime systemd --container native --timeout 30$/);
    assert.equal(u.get('Service', 'WorkingDirectory'), '-/', 'process.cwd, not $DESTDIR');
    assert.equal(u.get('Service', 'PIDFile'), undefined);
    assert.equal(u.get('Service', 'X-BerthRuntime'), 'systemd');
    assert.equal(u.get('Service', 'RootDirectoryStartOnly'), 'yes', 'the other commands run on the host\'s root');
    assert.doesNotMatch(r.unit!, /runc|crun/);
    assert.ok(r.native?.notes.some((x) => /pid namespace/.test(x)));
    if (hasCommand('systemd-analyze')) assert.equal(verify('native', r.unit!, '/usr/bin/run.sh'), undefined);
  });

  /** What each corpus image gives: rendered, or the field its refusal names (privileged images bind the host's /dev, share /run back...). */
  const EXPECTED: Readonly<Record<string, string>> = {
    flannel: 'hostname',
    'docker-centos': 'mounts[7] /run',
    'docker-fedora': 'mounts[7] /run',
    'net-snmp': 'mounts[3] /dev/pts',
    etcd: 'rendered',
    'hello-world': 'rendered',
    buildah: 'mounts[1] /run',
    kubeadm: 'mounts[2] /dev/pts',
    'kube-apiserver': 'rendered',
    kubelet: 'mounts[2] /dev/pts',
    'open-vm-tools': 'mounts[18] /dev/pts',
    'ovirt-guest-agent': 'linux.devices',
    'qemu-guest-agent': 'linux.devices',
  };

  describe('the atomic corpus', { skip: !hasCommand('systemd-analyze') && 'systemd-analyze is not installed' }, () => {
    for (const entry of CORPUS) {
      it(`${entry.id}: rendered and verified, or refused naming the field`, async (t) => {
        let r;
        try {
          r = await renderNative(entry.image(PLACEHOLDER_BINARIES), entry.id);
        } catch (e) {
          assert.ok(e instanceof BerthError, String(e));
          assert.match(e.message, /^\/exports\/config\.json(\.template)?: [a-zA-Z.[\]0-9() \/-]+ cannot run with --runtime systemd: /);
          assert.match(e.hint ?? '', /--runtime runc/);
          assert.ok(e.message.includes(`: ${EXPECTED[entry.id]} cannot run with --runtime systemd`), `${entry.id}: expected ${EXPECTED[entry.id]}, got ${e.message}`);
          t.diagnostic(`refused: ${e.message}`);
          return;
        }
        const u = r.unitFile;
        assert.equal(EXPECTED[entry.id], 'rendered', `${entry.id} rendered`);
        assert.equal(u.get('Service', 'RootDirectory'), `/var/lib/berth/containers/${entry.id}.0/rootfs`);
        assert.equal(u.get('Service', 'ProtectSystem'), 'strict');
        if (entry.notify) {
          assert.equal(u.get('Service', 'Type'), 'notify');
          assert.ok(u.getAll('Service', 'BindPaths').includes('/run/systemd/notify:/run/systemd/notify:norbind'), 'systemd\'s socket reaches the daemon');
        }
        const command = u.get('Service', 'ExecStart')!.split(' ')[0]!;
        assert.equal(verify(entry.id, r.unit!, command), undefined);
        t.diagnostic(`rendered: ${u.get('Service', 'Type')} ${command}`);
      });
    }
  });
});
