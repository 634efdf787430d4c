import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { busyboxLayerTar } from '../fixtures/oci-image.ts';
import { Store } from '../../src/store/store.ts';
import { allFiles, cleanup, countObjects, sandbox, storeImage, streamOf, tarOf, type TestImage } from './store-helpers.ts';
import { digestOf } from '../../src/image/digest.ts';

after(cleanup);

/** Inode -> blocks of every entry under `dir`, the directory itself included. */
async function inodes(dir: string): Promise<Map<number, number>> {
  const out = new Map<number, number>();
  const walk = async (p: string): Promise<void> => {
    const st = await lstat(p);
    out.set(st.ino, st.blocks * 512);
    if (st.isDirectory()) for (const c of await readdir(p)) await walk(join(p, c));
  };
  await walk(dir);
  return out;
}

describe('store: deduplication', () => {
  let store: Store;
  let base: string;
  let busybox: Buffer;
  let app1: TestImage;
  let app2: TestImage;
  const shared = randomBytes(200_000);

  before(async () => {
    const box = await sandbox();
    base = box.base;
    store = await Store.open(box.root);
    busybox = await busyboxLayerTar();
    const data = Array.from({ length: 20 }, (_, i) => ({ name: `opt/app/data/${i}.bin`, data: randomBytes(64 * 1024 + i * 1000) }));
    app1 = await storeImage(store, [busybox, await tarOf([...data, { name: 'opt/app/shared.bin', data: shared }, { name: 'opt/app/v', data: '1' }])], 'one');
    app2 = await storeImage(store, [busybox, await tarOf([{ name: 'usr/lib/shared.bin', data: shared }, { name: 'opt/app/v', data: '2' }])], 'two');
  });

  it('stores a shared base layer once and every distinct file once', async () => {
    assert.equal((await readdir(join(store.dir, 'layers'))).length, 3);
    // busybox binary + passwd + group, 20 data files, shared.bin (in both apps' layers), v=1, v=2
    assert.equal(await countObjects(store.dir), 3 + 20 + 1 + 2);
  });

  it('counts a file shared by layers once in the image size', async () => {
    const one = await store.getImage(app1.manifestDigest);
    const two = await store.getImage(app2.manifestDigest);
    assert.ok(one && two);
    // The apps differ by the 20 data files only; busybox, shared.bin and v count once each.
    const data = Array.from({ length: 20 }, (_, i) => 64 * 1024 + i * 1000).reduce((a, b) => a + b);
    assert.equal(one.size - two.size, data);
    assert.ok(two.size > shared.length + 1_000_000);
  });

  it('importing a layer whose files are all stored adds no objects', async () => {
    const tar = await tarOf([{ name: 'elsewhere/shared.bin', data: shared }]);
    const r = await store.importLayer(digestOf(tar), streamOf(tar));
    assert.deepEqual([r.newObjects, r.newBytes, r.bytes], [0, 0, shared.length]);
  });

  it('two checkouts of one image share the inode of every regular file and symlink', async () => {
    const a = join(base, 'co-a');
    const b = join(base, 'co-b');
    await store.checkout(app1.manifestDigest, a);
    await store.checkout(app1.manifestDigest, b);
    const filesA = await allFiles(a);
    assert.ok(filesA.length > 20);
    for (const f of filesA) {
      const sa = await lstat(f);
      const sb = await lstat(join(b, f.slice(a.length)));
      assert.equal(sa.ino, sb.ino, f);
      assert.ok(sa.nlink >= 3, f);
    }
    const applets = (await readdir(join(a, 'bin'))).filter((n) => n !== 'busybox');
    assert.ok(applets.length > 50);
    for (const n of applets) {
      const [sa, sb] = [await lstat(join(a, 'bin', n)), await lstat(join(b, 'bin', n))];
      assert.ok(sa.isSymbolicLink());
      assert.equal(sa.ino, sb.ino, n);
    }
  });

  it('a second checkout adds only directories and links: under 2% of the image on disk', async () => {
    const objects = new Set<number>();
    for (const f of await allFiles(join(store.dir, 'objects'))) objects.add((await lstat(f)).ino);
    const c = join(base, 'co-c');
    await store.checkout(app1.manifestDigest, c);
    let added = 0;
    for (const [ino, bytes] of await inodes(c)) if (!objects.has(ino)) added += bytes;
    const size = (await store.getImage(app1.manifestDigest))!.size;
    assert.ok(added > 0);
    assert.ok(added < size * 0.02, `second checkout added ${added} bytes for an image of ${size}`);
  });
});
