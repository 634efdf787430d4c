/** Checking out onto another filesystem (a tmpfs we mount): EXDEV, and --copy. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Store } from '../../src/store/store.ts';
import { cleanup, exists, rejectsWith, sandbox, storeImage, tarOf, type TestImage } from './store-helpers.ts';

let mnt: string | undefined;
let skip: string | false = false;
let store: Store;
let image: TestImage;

before(async () => {
  const box = await sandbox();
  store = await Store.open(box.root);
  image = await storeImage(store, [
    await tarOf([
      { name: 'bin/su', data: 'su', mode: 0o4755 },
      { name: 'bin/sh', type: 'symlink', linkname: 'busybox' },
      { name: 'home/u/f', data: 'users', uid: 1000, gid: 1000, mode: 0o600 },
    ]),
  ]);
  const dir = join(box.base, 'tmpfs');
  await mkdir(dir);
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'berth-test', dir], { stdio: 'pipe' });
    mnt = dir;
  } catch (e) {
    skip = `cannot mount a tmpfs here: ${(e as Error).message.split('\n')[0]}`;
  }
});

after(async () => {
  if (mnt) execFileSync('umount', [mnt]);
  await cleanup();
});

describe('store checkout across filesystems', () => {
  it('fails with a hint to use --copy, leaving no target behind', async (t) => {
    if (skip) return t.skip(skip);
    const target = join(mnt!, 'co');
    await rejectsWith(store.checkout(image.manifestDigest, target), 'IO_ERROR', /different filesystems/);
    await assert.rejects(store.checkout(image.manifestDigest, target), (e: { hint?: string }) => /--copy/.test(e.hint ?? ''));
    assert.equal(await exists(target), false);
  });

  it('copies with `copy`, says so, and keeps content, modes and owners', async (t) => {
    if (skip) return t.skip(skip);
    const target = join(mnt!, 'co');
    const said: string[] = [];
    const r = await store.checkout(image.manifestDigest, target, { copy: true, onCopy: (why) => said.push(why) });
    assert.deepEqual(r, { files: 2, dirs: 3, links: 1, copied: true });
    assert.equal(said.length, 1);
    assert.match(said[0]!, /different filesystem/);
    const su = await stat(join(target, 'bin/su'));
    assert.equal(su.mode & 0o7777, 0o4755);
    assert.equal(su.nlink, 1);
    assert.equal(su.mtimeMs, 0);
    const f = await stat(join(target, 'home/u/f'));
    assert.deepEqual([f.uid, f.gid, f.mode & 0o7777], [1000, 1000, 0o600]);
    assert.equal(await readFile(join(target, 'home/u/f'), 'utf8'), 'users');
    assert.deepEqual((await readdir(join(target, 'bin'))).sort(), ['sh', 'su']);
  });

  it('with `copy` on the same filesystem, still hard-links', async (t) => {
    if (skip) return t.skip(skip);
    const target = join(store.dir, '..', '..', 'co-same');
    const r = await store.checkout(image.manifestDigest, target, { copy: true });
    assert.equal(r.copied, false);
    assert.equal((await stat(join(target, 'bin/su'))).nlink > 1, true);
  });
});
