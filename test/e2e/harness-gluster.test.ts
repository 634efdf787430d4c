// Self-test of the GlusterFS harness (test/harness/gluster.ts): a volume comes up with a
// read-write and a read-only mount, hard links work, a test host booted afterwards sees the
// read-only mount and runc runs a container whose rootfs is on it; stop() leaves nothing:
// no process, no mount, no temp dir, nothing new in the host's gluster directories.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { TestGluster, mountsUnder, processesMentioning } from '../harness/gluster.ts';
import { TestHost } from '../harness/test-host.ts';

const HOST_DIRS = ['/var/run/gluster', '/var/lib/glusterd', '/var/log/glusterfs'];
const entries = (d: string) => (fs.existsSync(d) ? fs.readdirSync(d).sort() : []);

test('gluster harness: rw and ro mounts, a container from the ro mount, nothing left after stop', { timeout: 300_000 }, async () => {
  const hostDirsBefore = HOST_DIRS.map(entries);
  const gluster = await TestGluster.start();
  let host: TestHost | undefined;
  let bundle: string | undefined;
  try {
    // read-write side: files and a hard link
    await mkdir(path.join(gluster.rw, 'img/rootfs/bin'), { recursive: true });
    // runc cannot create mount points in a read-only rootfs: they must be there
    for (const d of ['proc', 'dev', 'sys']) await mkdir(path.join(gluster.rw, 'img/rootfs', d));
    await copyFile('/bin/busybox', path.join(gluster.rw, 'img/rootfs/bin/busybox'));
    fs.chmodSync(path.join(gluster.rw, 'img/rootfs/bin/busybox'), 0o755);
    await writeFile(path.join(gluster.rw, 'img/rootfs/hello'), 'from the share\n');
    fs.linkSync(path.join(gluster.rw, 'img/rootfs/hello'), path.join(gluster.rw, 'img/rootfs/hello-link'));
    // read-only side sees them, the link as one inode, and refuses writes
    const a = fs.statSync(path.join(gluster.ro, 'img/rootfs/hello'));
    const b = fs.statSync(path.join(gluster.ro, 'img/rootfs/hello-link'));
    assert.equal(a.ino, b.ino, 'hard link: one inode');
    assert.equal(a.nlink, 2);
    assert.throws(() => fs.writeFileSync(path.join(gluster.ro, 'x'), 'x'), /EROFS/);

    // a test host booted now has its own copy of the ro mount
    host = await TestHost.start();
    const seen = await host.exec('cat', [path.join(gluster.ro, 'img/rootfs/hello')]);
    assert.equal(seen.code, 0, seen.stderr);
    assert.equal(seen.stdout, 'from the share\n');

    // runc inside the test host runs a container whose rootfs is on the ro mount
    bundle = await mkdtemp(path.join(os.tmpdir(), 'berth-glb-'));
    const spec = await host.exec('runc', ['spec', '--bundle', bundle]);
    assert.equal(spec.code, 0, spec.stderr);
    const configPath = path.join(bundle, 'config.json');
    const config = JSON.parse(await readFile(configPath, 'utf8')) as {
      process: { terminal: boolean; args: string[] };
      root: { path: string; readonly: boolean };
      linux: { namespaces: { type: string }[] };
    };
    config.process.terminal = false;
    config.process.args = ['/bin/busybox', 'cat', '/hello'];
    config.root = { path: path.join(gluster.ro, 'img/rootfs'), readonly: true };
    config.linux.namespaces = config.linux.namespaces.filter((n) => n.type !== 'network');
    await writeFile(configPath, JSON.stringify(config, null, 2));
    const ran = await host.exec('runc', ['run', '--bundle', bundle, 'gl-harness'], { timeoutMs: 60_000 });
    assert.equal(ran.code, 0, ran.stderr);
    assert.equal(ran.stdout, 'from the share\n');

    // unmounting inside the host leaves the test process's mount alone
    assert.equal((await host.exec('umount', [gluster.ro])).code, 0);
    assert.equal(fs.readFileSync(path.join(gluster.ro, 'img/rootfs/hello'), 'utf8'), 'from the share\n');
  } finally {
    await host?.stop();
    if (bundle !== undefined) await rm(bundle, { recursive: true, force: true });
    await gluster.stop();
  }
  assert.deepEqual(processesMentioning(gluster.dir), [], 'no gluster process left');
  assert.deepEqual(mountsUnder(gluster.dir), [], 'no mount left');
  assert.ok(!fs.existsSync(gluster.dir), 'temp dir removed');
  assert.deepEqual(HOST_DIRS.map(entries), hostDirsBefore, "the host's gluster directories as before");
});
