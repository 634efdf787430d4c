import assert from 'node:assert/strict';
import { lstat, mkdir, mkdtemp, readFile, readlink, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { applyHostFiles, removeHostFiles } from '../../src/deploy/hostfs.ts';
import { planHostFiles } from '../../src/render/hostfs-plan.ts';
import type { HostfsEntry } from '../../src/render/exports.ts';

let tmp: string;
let n = 0;
before(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'berth-hostfs-'));
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

async function hostRoot(): Promise<string> {
  const root = path.join(tmp, `host-${n++}`);
  await mkdir(path.join(root, 'etc'), { recursive: true });
  await mkdir(path.join(root, 'usr/local/bin'), { recursive: true });
  return root;
}

const entries: HostfsEntry[] = [
  { type: 'dir', path: '/etc', mode: 0o755 },
  { type: 'dir', path: '/etc/app', mode: 0o750 },
  { type: 'file', path: '/etc/app/app.conf', mode: 0o640, content: Buffer.from('name=$NAME\n') },
  { type: 'dir', path: '/usr', mode: 0o755 },
  { type: 'dir', path: '/usr/local', mode: 0o755 },
  { type: 'dir', path: '/usr/local/bin', mode: 0o755 },
  { type: 'file', path: '/usr/local/bin/appctl', mode: 0o755, content: Buffer.from('#!/bin/sh\n') },
  { type: 'symlink', path: '/usr/local/bin/actl', target: 'appctl' },
];
const plan = () => planHostFiles({ entries, renameFiles: { '/etc/app/app.conf': '/etc/app/deep/$NAME.conf' }, installedFilesTemplate: ['/etc/app/app.conf'], values: { NAME: 'web' } }).plan;
const exists = (p: string) => lstat(p).then(() => true, () => false);

describe('hostfs apply and remove', () => {
  it('installs files, links and directories, records sha256 and created directories, and removes them all', async () => {
    const root = await hostRoot();
    const result = await applyHostFiles(plan(), { hostRoot: root });
    assert.deepEqual(result.kept, []);
    assert.deepEqual(result.dirs, ['/etc/app', '/etc/app/deep']);
    assert.deepEqual(result.files.map((f) => `${f.type} ${f.path}`), ['file /etc/app/deep/web.conf', 'symlink /usr/local/bin/actl', 'file /usr/local/bin/appctl']);
    assert.equal(await readFile(path.join(root, 'etc/app/deep/web.conf'), 'utf8'), 'name=web\n');
    assert.equal((await stat(path.join(root, 'etc/app/deep/web.conf'))).mode & 0o777, 0o640);
    assert.equal((await stat(path.join(root, 'etc/app'))).mode & 0o777, 0o750);
    assert.equal(await readlink(path.join(root, 'usr/local/bin/actl')), 'appctl');

    const removed = await removeHostFiles(result, { hostRoot: root });
    assert.deepEqual(removed.kept, []);
    assert.equal(removed.removed.length, 3);
    assert.equal(await exists(path.join(root, 'etc/app')), false, 'directories berth created are removed');
    assert.equal(await exists(path.join(root, 'usr/local/bin')), true, 'directories that existed stay');
  });

  it('never overwrites an existing host file (reported as kept, not recorded)', async () => {
    const root = await hostRoot();
    await writeFile(path.join(root, 'usr/local/bin/appctl'), 'the admin\'s own\n');
    const result = await applyHostFiles(plan(), { hostRoot: root });
    assert.deepEqual(result.kept, ['/usr/local/bin/appctl']);
    assert.ok(!result.files.some((f) => f.path === '/usr/local/bin/appctl'));
    await removeHostFiles(result, { hostRoot: root });
    assert.equal(await readFile(path.join(root, 'usr/local/bin/appctl'), 'utf8'), 'the admin\'s own\n');
  });

  it('keeps files changed since install, and the directories holding them', async () => {
    const root = await hostRoot();
    const result = await applyHostFiles(plan(), { hostRoot: root });
    await writeFile(path.join(root, 'etc/app/deep/web.conf'), 'name=edited\n');
    await rm(path.join(root, 'usr/local/bin/actl'));
    await symlink('/etc/shadow', path.join(root, 'usr/local/bin/actl'));
    const removed = await removeHostFiles(result, { hostRoot: root });
    assert.deepEqual(removed.kept.sort(), ['/etc/app/deep/web.conf', '/usr/local/bin/actl']);
    assert.deepEqual(removed.removed, ['/usr/local/bin/appctl']);
    assert.equal(await readFile(path.join(root, 'etc/app/deep/web.conf'), 'utf8'), 'name=edited\n');
    const again = await removeHostFiles(result, { hostRoot: root });
    assert.deepEqual(again.missing, ['/usr/local/bin/appctl']);
  });

  it('refuses to write through a symlink on the host, and leaves nothing behind', async () => {
    const root = await hostRoot();
    const outside = path.join(tmp, `outside-${n++}`);
    await mkdir(outside);
    await symlink(outside, path.join(root, 'etc/app'));
    await assert.rejects(applyHostFiles(plan(), { hostRoot: root }), { code: 'UNSAFE_PATH', message: /\/etc\/app: it is a symbolic link on the host/ });
    assert.equal(await exists(path.join(outside, 'deep')), false);
    assert.equal(await exists(path.join(root, 'usr/local/bin/appctl')), false);
  });

  it('does not follow a symlink planted where a file goes', async () => {
    const root = await hostRoot();
    const target = path.join(tmp, `target-${n++}`);
    await writeFile(target, 'precious\n');
    await symlink(target, path.join(root, 'usr/local/bin/appctl'));
    const result = await applyHostFiles(plan(), { hostRoot: root });
    assert.ok(result.kept.includes('/usr/local/bin/appctl'));
    assert.equal(await readFile(target, 'utf8'), 'precious\n');
  });

  it('does not delete through a parent that became a symlink', async () => {
    const root = await hostRoot();
    const result = await applyHostFiles(plan(), { hostRoot: root });
    const elsewhere = path.join(tmp, `elsewhere-${n++}`);
    await mkdir(path.join(elsewhere, 'deep'), { recursive: true });
    await writeFile(path.join(elsewhere, 'deep/web.conf'), 'name=web\n');
    await rm(path.join(root, 'etc/app'), { recursive: true });
    await symlink(elsewhere, path.join(root, 'etc/app'));
    const removed = await removeHostFiles(result, { hostRoot: root });
    assert.ok(removed.kept.includes('/etc/app/deep/web.conf'));
    assert.equal(await readFile(path.join(elsewhere, 'deep/web.conf'), 'utf8'), 'name=web\n');
  });
});
