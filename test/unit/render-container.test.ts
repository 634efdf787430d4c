import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { digestOf } from '../../src/image/digest.ts';
import type { ImageConfig } from '../../src/image/manifest.ts';
import { renderContainer, type RenderInput } from '../../src/render/container.ts';
import { readExports } from '../../src/render/exports.ts';
import type { RuntimeSpec } from '../../src/render/oci-config.ts';
import { UnitFile } from '../../src/render/unit-file.ts';
import type { FixtureImageSpec } from '../fixtures/oci-image.ts';
import {
  dockerLikeImage,
  etcdImage,
  exitingImage,
  flannelLikeImage,
  helloWorldImage,
  unresolvedVariableImage,
  writeSpecFiles,
} from '../fixtures/system-images.ts';

let tmp: string;
let n = 0;
before(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'berth-render-'));
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

function imageConfigOf(spec: FixtureImageSpec): ImageConfig {
  return { architecture: 'amd64', os: 'linux', config: { ...spec.config }, rootfs: { type: 'layers', diff_ids: [digestOf('x')] } };
}

/** Renders `spec` as ops/install would, from its exports only, against an empty host root. */
async function render(spec: FixtureImageSpec, name: string, extra: Partial<RenderInput> = {}) {
  const rootfs = path.join(tmp, `rootfs-${n}`);
  const hostRoot = path.join(tmp, `host-${n++}`);
  await mkdir(rootfs);
  await mkdir(hostRoot);
  await writeSpecFiles(spec, rootfs, (p) => p === 'exports' || p.startsWith('exports/'));
  const exports = await readExports(rootfs);
  const r = await renderContainer({
    name,
    destDir: `/var/lib/berth/containers/${name}`,
    imageName: `docker://registry.example/${name}:latest`,
    imageId: digestOf(name),
    imageConfig: imageConfigOf(spec),
    exports,
    set: {},
    runtime: '/usr/sbin/runc',
    ordering: {},
    hostRoot,
    uuid: '00000000-0000-4000-8000-000000000000',
    uid: 0,
    gid: 0,
    ...extra,
  });
  return { ...r, spec: JSON.parse(r.configJson) as RuntimeSpec, unitFile: UnitFile.parse(r.unit ?? '') };
}

describe('renderContainer with the system image fixtures', () => {
  it('hello-world: defaults from manifest.json, --set overrides, a forking unit', async () => {
    const r = await render(helloWorldImage(18081), 'hello', { set: { RECEIVER: 'berth' } });
    assert.deepEqual(r.spec.process.env?.slice(0, 2), ['PORT=18081', 'RECEIVER=berth']);
    assert.equal(r.spec.linux?.cgroupsPath, '/system.slice/hello.service/container');
    assert.equal(r.unitFile.get('Service', 'Type'), 'forking');
    assert.equal(r.unitFile.get('Service', 'ExecStart'), r.values['EXEC_START']);
    assert.equal(r.tmpfiles, undefined);
    assert.deepEqual(r.hostfs, []);
    assert.deepEqual(r.warnings, []);
  });

  it('hello-world: a --set value that closes a JSON string stays one env entry', async () => {
    const evil = 'x", "PWNED=1"], "cwd": "/", "args": ["/bin/sh", "-c", "evil';
    const r = await render(helloWorldImage(), 'hello', { set: { RECEIVER: evil } });
    assert.deepEqual(r.spec.process.args, ['/usr/bin/run.sh']);
    assert.ok(r.spec.process.env?.includes(`RECEIVER=${evil}`));
  });

  it('hello-world: newline values and forced variables are refused', async () => {
    await assert.rejects(render(helloWorldImage(), 'hello', { set: { RECEIVER: 'x\nExecStartPre=/bin/evil' } }), { code: 'USAGE', message: /newline/ });
    await assert.rejects(render(helloWorldImage(), 'hello', { set: { EXEC_START: '/bin/evil' } }), { code: 'USAGE', message: /--set EXEC_START/ });
  });

  it('etcd: binds, tmpfiles, hostfs renamed and templated', async () => {
    const r = await render(etcdImage(), 'etcd');
    assert.ok(r.spec.process.args.includes('http://127.0.0.1:2379'));
    const binds = (r.spec.mounts ?? []).filter((m) => m.type === 'bind').map((m) => `${m.source} -> ${m.destination}`);
    assert.deepEqual(binds, ['/var/lib/etcd -> /var/lib/etcd', '/run/etcd -> /run/etcd', '/etc/etcd/etcd.conf -> /etc/etcd/etcd.conf']);
    assert.equal(r.tmpfiles, 'd /var/lib/etcd 0700 0 0 - -\nd /run/etcd 0755 0 0 - -\n');
    const files = r.hostfs.filter((f) => f.type === 'file');
    assert.deepEqual(files.map((f) => f.path), ['/etc/etcd/etcd.conf', '/usr/local/bin/etcdctl-etcd']);
    const ctl = files[1];
    assert.ok(ctl?.type === 'file');
    assert.match(ctl.content.toString(), /exec \/usr\/sbin\/runc exec etcd \/usr\/bin\/etcdctl --endpoints=http:\/\/127.0.0.1:2379 "\$@"/);
    assert.deepEqual(r.warnings, []);
  });

  it('etcd: a second instance gets its own paths', async () => {
    const r = await render(etcdImage(), 'etcd2', { set: { CONF_DIRECTORY: '/etc/berth', ETCD_NAME: 'two' } });
    assert.ok(r.hostfs.some((f) => f.path === '/etc/berth/etcd/etcd2.conf'));
    assert.ok(r.hostfs.some((f) => f.path === '/usr/local/bin/etcdctl-etcd2'));
    assert.ok(r.spec.process.args.includes('two=http://127.0.0.1:2380'));
  });

  it('flannel-like: ordering from its manifest plus flags, and generated tmpfiles for its missing bind source', async () => {
    const r = await render(flannelLikeImage(), 'flannel', { ordering: { wants: ['etcd'], after: ['etcd'] } });
    assert.deepEqual(r.unitFile.getAll('Unit', 'After'), ['etcd.service']);
    assert.deepEqual(r.unitFile.getAll('Unit', 'Wants'), ['etcd.service']);
    assert.deepEqual(r.unitFile.getAll('Install', 'RequiredBy'), ['docker.service']);
    assert.match(r.tmpfiles!, /^d \/run\/flannel 0700 root root -$/m);
  });

  it('docker-like: waits for flannel through the same bind source', async () => {
    const r = await render(dockerLikeImage(), 'docker', { set: { RUN_DIRECTORY: '/run/test' } });
    assert.match(r.tmpfiles!, /^d \/run\/test\/flannel 0700 root root -$/m);
    assert.deepEqual(r.unitFile.getAll('Unit', 'After'), ['flannel.service']);
  });

  it('an image whose process exits at once still renders (the start must fail, not the render)', async () => {
    const r = await render(exitingImage(), 'exits');
    assert.equal(r.unitFile.get('Service', 'Type'), 'forking');
  });

  it('an unresolved variable names the file and the variable', async () => {
    await assert.rejects(render(unresolvedVariableImage(), 'unresolved'), { code: 'USAGE', message: '/exports/service.template: variable $MODE has no value' });
    const r = await render(unresolvedVariableImage(), 'unresolved', { set: { MODE: 'fast' } });
    assert.deepEqual(r.unitFile.getAll('Service', 'Environment'), ['MODE=fast']);
  });

  it('an image without exports gets the default config and the built-in unit', async () => {
    const r = await render({ config: { Cmd: ['/bin/sleep', '1'] } }, 'plain', { ordering: { after: ['etcd'] } });
    assert.deepEqual(r.spec.process.args, ['/bin/sleep', '1']);
    assert.equal(r.unitFile.get('Service', 'Type'), 'forking');
    assert.deepEqual(r.unitFile.getAll('Unit', 'After'), ['network.target', 'etcd.service']);
  });

  it('noContainerService: host files only, no unit', async () => {
    const spec: FixtureImageSpec = {
      layers: [
        [
          { path: 'exports/manifest.json', content: JSON.stringify({ noContainerService: true, renameFiles: { '/usr/local/bin/tool': '/usr/local/bin/tool-$NAME' } }) },
          { path: 'exports/hostfs/usr/local/bin/tool', content: '#!/bin/sh\n', executable: true },
        ],
      ],
      config: { Cmd: ['/bin/true'] },
    };
    const r = await render(spec, 'tools', { ordering: { after: ['etcd'] } });
    assert.equal(r.unit, undefined);
    assert.ok(r.hostfs.some((f) => f.path === '/usr/local/bin/tool-tools'));
    assert.match(r.warnings.join('\n'), /ordering options have no unit/);
  });

  it('warns about a --set the image never uses', async () => {
    const r = await render(helloWorldImage(), 'hello', { set: { RECIEVER: 'typo' } });
    assert.deepEqual(r.warnings, ["--set RECIEVER: the image's templates do not use RECIEVER"]);
  });
});
