/**
 * Every image of the atomic corpus (test/fixtures/atomic-corpus.ts, whose
 * header maps each published image to its entry) renders as `berth install
 * --dry-run` would, and each rendered unit passes `systemd-analyze verify`.
 *
 * systemd-analyze verify runs on this machine with the unit in a temporary
 * directory: --man=no (no man pages to look up for Documentation=), and the
 * commands the unit runs (runc, node, /bin/rm …) must exist here, so the
 * runtime is the host's runc. Dependencies on units this machine lacks
 * (docker.service, etcd.service) are fine for verify: it loads them as
 * not-found. SELinuxContext= needs no SELinux to verify.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { digestOf } from '../../src/image/digest.ts';
import type { ImageConfig } from '../../src/image/manifest.ts';
import { renderContainer, type RenderInput } from '../../src/render/container.ts';
import { readExports } from '../../src/render/exports.ts';
import type { RuntimeSpec } from '../../src/render/oci-config.ts';
import { UnitFile } from '../../src/render/unit-file.ts';
import { ALL_CAPABILITIES } from '../../src/render/values.ts';
import { findRuntime, NOTIFY_SOCKET_IN_CONTAINER } from '../../src/runtime/runtime.ts';
import { berthCommand } from '../../src/self.ts';
import { CORPUS, PLACEHOLDER_BINARIES, flannelImage } from '../fixtures/atomic-corpus.ts';
import type { FixtureImageSpec } from '../fixtures/oci-image.ts';
import { writeSpecFiles } from '../fixtures/system-images.ts';
import { hasCommand } from '../harness/util.ts';

let tmp: string;
let runtime = '/usr/sbin/runc';
let n = 0;
before(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'berth-corpus-'));
  runtime = await findRuntime('runc').catch(() => runtime);
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

function imageConfigOf(spec: FixtureImageSpec): ImageConfig {
  return { architecture: 'amd64', os: 'linux', config: { ...spec.config }, rootfs: { type: 'layers', diff_ids: [digestOf('x')] } };
}

/** The directories every host has, in the fake host root bind sources are looked up in. */
const HOST_DIRS = ['run/systemd', 'var/run', 'etc', 'var/lib', 'var/log', 'dev', 'sys', 'proc', 'tmp', 'root', 'home', 'opt', 'mnt'];

async function render(spec: FixtureImageSpec, name: string, extra: Partial<RenderInput> = {}) {
  const rootfs = path.join(tmp, `rootfs-${n}`);
  const hostRoot = path.join(tmp, `host-${n++}`);
  await mkdir(rootfs);
  for (const d of HOST_DIRS) await mkdir(path.join(hostRoot, d), { recursive: true });
  await writeSpecFiles(spec, rootfs, (p) => p === 'exports' || p.startsWith('exports/'));
  const r = await renderContainer({
    name,
    destDir: `/var/lib/berth/containers/${name}`,
    imageName: `docker://registry.example/${name}:latest`,
    imageId: digestOf(name),
    imageConfig: imageConfigOf(spec),
    exports: await readExports(rootfs),
    set: {},
    runtime,
    ordering: {},
    berth: berthCommand(),
    // atomic's hosts: SELinux, every capability (fitSpecToHost has its own test below).
    hostFacts: { selinux: true, capabilities: undefined },
    hostRoot,
    uuid: '00000000-0000-4000-8000-000000000000',
    uid: 0,
    gid: 0,
    ...extra,
  });
  return { ...r, spec: JSON.parse(r.configJson) as RuntimeSpec, unitFile: UnitFile.parse(r.unit ?? '') };
}

/** systemd-analyze verify of `unit` as NAME.service; its output, or undefined when clean. */
async function verify(name: string, unit: string): Promise<string | undefined> {
  const dir = await mkdtemp(path.join(tmp, 'verify-'));
  const file = path.join(dir, `${name}.service`);
  await writeFile(file, unit);
  // The unit's WorkingDirectory= and the runtime's bundle are the deployment, which does not exist here.
  const r = spawnSync('systemd-analyze', ['verify', '--man=no', '--recursive-errors=no', file], { encoding: 'utf8', env: { ...process.env, SYSTEMD_LOG_LEVEL: 'notice' } });
  const out = `${r.stdout}${r.stderr}`.trim();
  return r.status === 0 && out === '' ? undefined : `exit ${r.status}: ${out}`;
}

const byId = (id: string) => CORPUS.find((e) => e.id === id)!;

describe('the atomic corpus renders', () => {
  for (const entry of CORPUS) {
    it(`${entry.id} (${entry.upstream.join(', ')})`, async () => {
      const r = await render(entry.image(PLACEHOLDER_BINARIES), entry.id);
      assert.ok(r.unit, 'a unit');
      const type = r.unitFile.get('Service', 'Type');
      assert.equal(type, entry.notify ? 'notify' : 'forking');
      assert.equal(r.unitFile.get('Service', 'ExecStart'), r.values['EXEC_START']);
      assert.equal(r.unitFile.get('Service', 'Delegate'), 'yes');
      assert.equal(r.spec.root.readonly, true);
      assert.equal(r.spec.linux?.cgroupsPath, `/system.slice/${entry.id}.service/container`);
      if (entry.notify) {
        assert.equal(r.unitFile.get('Service', 'NotifyAccess'), 'all');
        assert.ok(r.spec.process.env?.includes(`NOTIFY_SOCKET=${NOTIFY_SOCKET_IN_CONTAINER}`));
        assert.equal(r.spec.mounts?.at(-1)?.destination, NOTIFY_SOCKET_IN_CONTAINER, 'the notify socket is mounted last');
      }
      // No generated line may change the mode of something that exists (/run, /run/systemd).
      for (const line of (r.tmpfiles ?? '').split('\n')) assert.doesNotMatch(line, /^d \/(var\/)?run\/? /, line);
    });
  }
});

describe('corpus features, rendered', () => {
  it('flannel: notify unit as written, own ExecStopPost, ordering from defaultValues, tmpfiles D/d/r, hostfs', async () => {
    const r = await render(byId('flannel').image(PLACEHOLDER_BINARIES), 'flannel');
    const u = r.unitFile;
    assert.deepEqual(u.getAll('Unit', 'After'), ['network.target', 'network-online.target', 'etcd.service']);
    assert.deepEqual(u.getAll('Install', 'RequiredBy'), ['docker.service']);
    assert.deepEqual(u.getAll('Service', 'ExecStopPost'), ['/bin/rm /etc/systemd/system/docker.service.d/flannel.conf', `-${r.values['EXEC_STOPPOST']}`]);
    assert.deepEqual(u.getAll('Service', 'ExecStop'), [], 'ExecStop=$EXEC_STOP is dropped');
    assert.equal(u.get('Service', 'RuntimeDirectory'), 'flannel');
    assert.match(r.values['EXEC_START']!, /^\/usr\/bin\/env -u NOTIFY_SOCKET \S*runc run --bundle \S+ flannel$/);
    assert.match(r.tmpfiles!, /^D +\/run\/flannel +- - - - -$/m);
    assert.match(r.tmpfiles!, /^r +\/etc\/systemd\/system\/docker.service.d\/flannel.conf/m);
    assert.deepEqual(r.hostfs.map((f) => f.path).sort(), ['/etc', '/etc/flanneld', '/etc/flanneld/README', '/etc/sysconfig', '/etc/sysconfig/flanneld']);
    assert.equal(r.spec.hostname, 'flannel');
    assert.deepEqual(Object.keys(r.spec.process.capabilities as object).sort(), ['ambient', 'bounding', 'effective', 'inheritable', 'permitted']);
    assert.deepEqual(r.warnings, []);
  });

  it('docker-centos: $ADDTL_MOUNTS empty by default, a JSON mount with --set, the host settings kept', async () => {
    const plain = await render(byId('docker-centos').image(PLACEHOLDER_BINARIES), 'docker');
    const u = plain.unitFile;
    assert.deepEqual(u.getAll('Service', 'EnvironmentFile'), ['-/etc/sysconfig/docker-storage', '-/etc/sysconfig/docker-network']);
    assert.equal(u.get('Service', 'SELinuxContext'), 'system_u:system_r:container_runtime_t:s0');
    assert.equal(u.get('Service', 'TimeoutStartSec'), '0');
    assert.deepEqual(u.getAll('Service', 'ExecStartPre'), [`-${plain.values['EXEC_STARTPRE']}`, "/bin/bash -c 'export -p > /run/docker-bash-env'"]);
    assert.equal(u.get('Service', 'LimitCORE'), 'infinity');
    assert.equal(plain.spec.process['selinuxLabel'], 'system_u:system_r:container_runtime_t:s0');
    assert.equal(plain.spec.linux?.['rootfsPropagation'], 'rslave');
    const proc = plain.spec.mounts!.findIndex((m) => m.destination === '/proc');
    const extra = '{"type": "bind", "source": "/srv", "destination": "/srv", "options": ["rbind", "rw"]}';
    const withMount = await render(byId('docker-centos').image(PLACEHOLDER_BINARIES), 'docker', { set: { ADDTL_MOUNTS: `, ${extra}` } });
    assert.deepEqual(withMount.spec.mounts![proc + 1], JSON.parse(extra), 'inserted after the last mount of the template');
    assert.ok(withMount.warnings.some((w) => /ADDTL_MOUNTS.*as JSON/.test(w)));
    // /run itself (RUN_DIRECTORY) is never a generated tmpfiles line.
    assert.doesNotMatch(plain.tmpfiles ?? '', /^d \/run /m);
  });

  it('on a host without SELinux and without CAP_SYS_RESOURCE: the label and the capability are dropped, with warnings', async () => {
    const caps = new Set(ALL_CAPABILITIES.filter((c) => c !== 'CAP_SYS_RESOURCE'));
    const r = await render(byId('docker-centos').image(PLACEHOLDER_BINARIES), 'docker', { hostFacts: { selinux: false, capabilities: caps } });
    assert.equal(r.spec.process['selinuxLabel'], undefined);
    const sets = r.spec.process.capabilities as Record<string, string[]>;
    for (const set of Object.values(sets)) assert.ok(!set.includes('CAP_SYS_RESOURCE') && set.includes('CAP_SYS_ADMIN'));
    assert.ok(r.warnings.some((w) => /selinuxLabel .* SELinux is not enabled/.test(w)));
    assert.ok(r.warnings.some((w) => /CAP_SYS_RESOURCE not granted/.test(w)));
    assert.equal(r.unitFile.get('Service', 'SELinuxContext'), 'system_u:system_r:container_runtime_t:s0', 'systemd itself ignores it without SELinux');
  });

  it('docker-fedora: ExecStartPre runs a script of the checkout, $DESTDIR substituted', async () => {
    const r = await render(byId('docker-fedora').image(PLACEHOLDER_BINARIES), 'docker');
    assert.ok(r.unitFile.getAll('Service', 'ExecStartPre').includes('/bin/sh /var/lib/berth/containers/docker/rootfs/set_mounts.sh'));
  });

  it('net-snmp: an empty tmpfiles.template plus lines for its missing bind sources', async () => {
    const r = await render(byId('net-snmp').image(PLACEHOLDER_BINARIES), 'snmp');
    for (const p of ['/etc/sysconfig/snmpd', '/etc/sysconfig/snmptrapd', '/var/lib/net-snmp', '/dev/log']) assert.match(r.tmpfiles!, new RegExp(`^d ${p} 0700 root root -$`, 'm'), p);
    assert.match(r.tmpfiles!, /^d \/run\/snmp 0700 root root -$/m);
  });

  it('etcd: renameFiles and installedFilesTemplate, CONF_DIRECTORY from defaultValues, tmpfiles d and Z with HOST_UID', async () => {
    const r = await render(byId('etcd').image(PLACEHOLDER_BINARIES), 'etcd', { set: { CONF_DIRECTORY: '/etc/berth' } });
    const conf = r.hostfs.find((f) => f.path === '/etc/berth/etcd/etcd.conf');
    assert.ok(conf && conf.type === 'file');
    assert.match(conf.content.toString(), /ETCD_CORPUS_CONF=etcd$/m);
    assert.ok(r.hostfs.some((f) => f.path === '/usr/local/bin/etcdctl'));
    assert.match(r.tmpfiles!, /^Z +\/var\/lib\/etcd\/etcd.etcd +0700 0 0 - -$/m);
    assert.ok(r.spec.mounts!.some((m) => m.source === '/etc/berth/etcd' && m.destination === '/etc/etcd/'));
    assert.ok(r.spec.process.env!.includes('ETCD_INITIAL_CLUSTER_STATE=new'));
  });

  it('hello-world and qemu-guest-agent: pre-1.0 capability and rlimit spellings are upgraded', async () => {
    const hello = await render(byId('hello-world').image(PLACEHOLDER_BINARIES), 'hello');
    assert.deepEqual((hello.spec.process.capabilities as Record<string, string[]>)['bounding'], ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE']);
    assert.ok(Array.isArray(hello.spec.process['rlimits']));
    assert.equal(hello.spec.linux?.['capabilities'], undefined);
    const qemu = await render(byId('qemu-guest-agent').image(PLACEHOLDER_BINARIES), 'qemu');
    const caps = qemu.spec.process.capabilities as Record<string, string[]>;
    assert.deepEqual(Object.keys(caps).sort(), ['ambient', 'bounding', 'effective', 'inheritable', 'permitted']);
    assert.ok(caps['ambient']!.includes('CAP_SYS_ADMIN'));
    assert.ok(qemu.warnings.some((w) => /1\.0\.0-rc3/.test(w)));
  });

  it('buildah: the built-in unit, tmpfiles template plus the existing /run/systemd left as it is', async () => {
    const r = await render(byId('buildah').image(PLACEHOLDER_BINARIES), 'buildah');
    assert.equal(r.unitFile.get('Service', 'Restart'), 'on-failure');
    assert.equal(r.unitFile.get('Service', 'WorkingDirectory'), '/var/lib/berth/containers/buildah');
    assert.match(r.tmpfiles!, /^d +\/var\/run\/NetworkManager/m);
    assert.match(r.tmpfiles!, /^d \/run\/systemd - - - -$/m, 'recreated after a reboot, never chmod-ed');
  });

  it('kubeadm: Restart=always with RestartSec, $ALL_PROCESS_CAPABILITIES in the five sets, /var/run/ not touched', async () => {
    const r = await render(byId('kubeadm').image(PLACEHOLDER_BINARIES), 'kubeadm');
    assert.equal(r.unitFile.get('Service', 'Restart'), 'always');
    assert.equal(r.unitFile.get('Service', 'RestartSec'), '10');
    const caps = r.spec.process.capabilities as Record<string, string[]>;
    for (const set of ['bounding', 'permitted', 'inheritable', 'effective', 'ambient']) assert.ok(caps[set]!.includes('CAP_SYS_ADMIN') && caps[set]!.length > 37, set);
    assert.doesNotMatch(r.tmpfiles ?? '', /\/var\/run\/? /);
    assert.deepEqual(r.spec.process.user, {});
  });

  it('open-vm-tools: ConditionVirtualization= kept; no Restart=', async () => {
    const r = await render(byId('open-vm-tools').image(PLACEHOLDER_BINARIES), 'vmtools');
    assert.equal(r.unitFile.get('Unit', 'ConditionVirtualization'), 'vmware');
    assert.equal(r.unitFile.get('Service', 'Restart'), undefined);
  });

  it('the early-exit variant of flannel keeps its TimeoutStartSec=60', async () => {
    const r = await render(flannelImage(PLACEHOLDER_BINARIES, { exitBeforeReady: 3, service: ['TimeoutStartSec=60'] }), 'early');
    assert.equal(r.unitFile.get('Service', 'TimeoutStartSec'), '60');
  });
});

describe('systemd-analyze verify accepts every rendered corpus unit', { skip: !hasCommand('systemd-analyze') && 'systemd-analyze is not installed' }, () => {
  for (const entry of CORPUS) {
    it(entry.id, async () => {
      const r = await render(entry.image(PLACEHOLDER_BINARIES), entry.id);
      assert.equal(await verify(entry.id, r.unit!), undefined);
    });
  }
});
