import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { lstat, readdir, readFile, readlink, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { digestOf } from '../../src/image/digest.ts';
import { Store } from '../../src/store/store.ts';
import { cleanup, countObjects, exists, imageOf, rejectsWith, sandbox, storeImage, streamOf, T1, tarOf } from './store-helpers.ts';

after(cleanup);

describe('store: import and checkout round trip', () => {
  let store: Store;
  let co: string;
  let result: { files: number; dirs: number; links: number; copied: boolean };
  let imported: { entries: number; bytes: number; newObjects: number; newBytes: number };
  const skipped: string[] = [];
  const T2 = new Date('2021-06-07T08:09:10Z');

  before(async () => {
    const box = await sandbox();
    store = await Store.open(box.root);
    const tar = await tarOf([
      { name: './', type: 'directory', mode: 0o777 },
      { name: 'etc/', type: 'directory', mode: 0o750, mtime: T2 },
      { name: 'etc/hosts', data: '127.0.0.1 localhost\n', mode: 0o640 },
      { name: 'bin/su', data: 'ELF-su', mode: 0o4755 },
      { name: 'bin/sg', data: 'ELF-sg', mode: 0o2711, gid: 42 },
      { name: 'bin/sh', type: 'symlink', linkname: 'busybox', mtime: T2 },
      { name: 'bin/abs', type: 'symlink', linkname: '/does/not/exist' },
      { name: 'bin/passwd', type: 'link', linkname: 'bin/su' },
      { name: 'home/alice/', type: 'directory', mode: 0o700, uid: 1000, gid: 1000 },
      { name: 'home/alice/notes', data: 'mine', mode: 0o600, uid: 1000, gid: 1000 },
      { name: 'tmp/', type: 'directory', mode: 0o1777 },
      { name: 'ro/', type: 'directory', mode: 0o555 },
      { name: 'ro/file', data: 'x' },
      { name: '/absolute/file', data: 'abs' },
      { name: 'dev/null', type: 'character-device', devmajor: 1, devminor: 3 },
      { name: 'big', data: Buffer.alloc(300_000, 7) },
      { name: 'empty', data: '' },
    ]);
    const image = imageOf([tar]);
    imported = await store.importLayer(image.diffIds[0]!, streamOf(tar), { onSkip: (p) => skipped.push(p) });
    await store.putImage({ ...image, signatures: [Buffer.from('sig')] });
    await store.setReference('registry.test/app:1', image.manifestDigest);
    co = join(box.base, 'co');
    result = await store.checkout(image.manifestDigest, co);
  });

  it('reports what it imported', () => {
    assert.equal(imported.entries, 17);
    assert.equal(imported.bytes, 20 + 6 + 6 + 4 + 1 + 3 + 300_000);
    assert.equal(imported.newObjects, 10); // hosts su sg notes file abs big empty, and the symlinks sh abs
    assert.deepEqual(skipped, ['dev/null']);
  });

  it('checks out content, modes (incl. setuid/setgid/sticky) and owners', async () => {
    assert.equal(await readFile(join(co, 'etc/hosts'), 'utf8'), '127.0.0.1 localhost\n');
    const mode = async (p: string) => (await lstat(join(co, p))).mode & 0o7777;
    assert.equal(await mode('etc/hosts'), 0o640);
    assert.equal(await mode('bin/su'), 0o4755);
    assert.equal(await mode('bin/sg'), 0o2711);
    assert.equal((await stat(join(co, 'bin/sg'))).gid, 42);
    assert.equal(await mode('tmp'), 0o1777);
    assert.equal(await mode('ro'), 0o555);
    assert.equal(await mode('etc'), 0o750);
    const alice = await stat(join(co, 'home/alice'));
    assert.deepEqual([alice.uid, alice.gid, alice.mode & 0o7777], [1000, 1000, 0o700]);
    const notes = await stat(join(co, 'home/alice/notes'));
    assert.deepEqual([notes.uid, notes.gid, notes.mode & 0o7777], [1000, 1000, 0o600]);
    assert.equal((await readFile(join(co, 'big'))).length, 300_000);
    assert.equal((await readFile(join(co, 'empty'))).length, 0);
    assert.equal(await readFile(join(co, 'absolute/file'), 'utf8'), 'abs');
  });

  it('makes the checkout root 0755 root:root whatever the layer says', async () => {
    const st = await stat(co);
    assert.deepEqual([st.mode & 0o7777, st.uid, st.gid], [0o755, 0, 0]);
  });

  it('keeps symlink targets verbatim, absolute ones too; symlinks are hard-linked objects (mtime 0)', async () => {
    assert.equal(await readlink(join(co, 'bin/sh')), 'busybox');
    assert.equal(await readlink(join(co, 'bin/abs')), '/does/not/exist');
    const sh = await lstat(join(co, 'bin/sh'));
    assert.equal(sh.mtimeMs, 0);
    assert.equal(sh.nlink, 2); // the object and this checkout
  });

  it('applies directory mtimes after the children; file mtimes are the objects\' (0)', async () => {
    assert.equal((await stat(join(co, 'etc'))).mtimeMs, T2.getTime());
    assert.equal((await stat(join(co, 'ro'))).mtimeMs, T1.getTime());
    assert.equal((await stat(join(co, 'etc/hosts'))).mtimeMs, 0);
  });

  it('hard links share one inode, which is the store object', async () => {
    const su = await stat(join(co, 'bin/su'));
    const passwd = await stat(join(co, 'bin/passwd'));
    assert.equal(su.ino, passwd.ino);
    const objects = await readdir(join(store.dir, 'objects'), { recursive: true });
    const inodes = new Set<number>();
    for (const o of objects) {
      const st = await lstat(join(store.dir, 'objects', o));
      if (st.isFile()) inodes.add(st.ino);
    }
    assert.ok(inodes.has(su.ino));
    assert.equal(su.nlink, 3); // the object, su, passwd
  });

  it('never creates devices, and counts what it made', async () => {
    assert.equal(await exists(join(co, 'dev/null')), false);
    assert.ok(await exists(join(co, 'dev')));
    assert.deepEqual(result, { files: 9, dirs: 8, links: 2, copied: false });
  });

  it('lists the image with its reference, signatures and size', async () => {
    const [img] = await store.listImages();
    assert.ok(img);
    assert.deepEqual(img.references, ['registry.test/app:1']);
    assert.equal(img.signatures.length, 1);
    assert.equal(img.signatures[0]!.toString(), 'sig');
    assert.equal(img.size, imported.newBytes);
    assert.equal(img.config.rootfs.diff_ids.length, 1);
    assert.equal(img.manifest.layers.length, 1);
    assert.ok(!Number.isNaN(Date.parse(img.created)));
  });
});

describe('store: image records and references', () => {
  it('refuses an image whose layers are missing, and bytes that do not match', async () => {
    const box = await sandbox();
    const store = await Store.open(box.root);
    const tar = await tarOf([{ name: 'a', data: 'a' }]);
    const image = imageOf([tar]);
    await rejectsWith(store.putImage({ ...image, signatures: [] }), 'IMAGE_NOT_FOUND', /not in the store/);
    await store.importLayer(image.diffIds[0]!, streamOf(tar));
    await rejectsWith(store.putImage({ ...image, manifestBytes: Buffer.from(`${image.manifestBytes.toString()} `), signatures: [] }), 'DIGEST_MISMATCH');
    await rejectsWith(store.putImage({ ...image, configBytes: Buffer.from(`${image.configBytes.toString()} `), signatures: [] }), 'DIGEST_MISMATCH');
    assert.deepEqual(await store.listImages(), []);
  });

  it('putImage is idempotent and accumulates signatures', async () => {
    const box = await sandbox();
    const store = await Store.open(box.root);
    const tar = await tarOf([{ name: 'a', data: 'a' }]);
    const image = await storeImage(store, [tar]);
    const first = await store.getImage(image.manifestDigest);
    await store.putImage({ ...image, signatures: [] });
    await store.putImage({ ...image, signatures: [Buffer.from('s1')] });
    await store.putImage({ ...image, signatures: [Buffer.from('s1'), Buffer.from('s2')] });
    const again = await store.getImage(image.manifestDigest);
    assert.equal(again?.created, first?.created);
    assert.deepEqual(again?.signatures.map(String), ['s1', 's2']);
    assert.ok(again?.manifestBytes.equals(image.manifestBytes));
    assert.ok(again?.configBytes.equals(image.configBytes));
    assert.equal(again?.signedManifestBytes, undefined);
    const index = Buffer.from('{"manifests":[]}');
    await store.putImage({ ...image, signatures: [Buffer.from('s3')], signedManifestBytes: index });
    await store.putImage({ ...image, signatures: [] });
    const signed = await store.getImage(image.manifestDigest);
    assert.ok(signed?.signedManifestBytes?.equals(index));
    assert.deepEqual(signed?.signatures.map(String), ['s1', 's2', 's3']);
  });

  it('references: set, resolve, move, remove; odd and long names are safe file names', async () => {
    const box = await sandbox();
    const store = await Store.open(box.root);
    const a = await storeImage(store, [await tarOf([{ name: 'a', data: 'a' }])]);
    const b = await storeImage(store, [await tarOf([{ name: 'b', data: 'b' }])]);
    const long = `registry.test/${'x/'.repeat(150)}app:tag`;
    const refs = ['registry.test:5000/ns/app:v1', '../../etc/passwd', '.hidden', long, 'app@sha256:abc'];
    for (const r of refs) await store.setReference(r, a.manifestDigest);
    for (const r of refs) assert.equal(await store.resolveReference(r), a.manifestDigest);
    for (const f of await readdir(join(store.dir, 'refs'))) {
      assert.ok(Buffer.byteLength(f) <= 200 && !f.includes('/') && !f.startsWith('.'), f);
    }
    assert.equal(await store.resolveReference('registry.test:5000/ns/app:v2'), undefined);
    await store.setReference(refs[0]!, b.manifestDigest);
    assert.equal(await store.resolveReference(refs[0]!), b.manifestDigest);
    assert.deepEqual((await store.getImage(b.manifestDigest))?.references, [refs[0]]);
    assert.equal(await store.removeReference(refs[0]!), true);
    assert.equal(await store.removeReference(refs[0]!), false);
    assert.equal(await store.resolveReference(refs[0]!), undefined);
    await rejectsWith(store.setReference('', a.manifestDigest), 'INVALID_REFERENCE');
  });

  it('removeImage drops the record and its references, leaving layers and objects for gc', async () => {
    const box = await sandbox();
    const store = await Store.open(box.root);
    const tar = await tarOf([{ name: 'a', data: 'a' }]);
    const image = await storeImage(store, [tar]);
    await store.setReference('r:1', image.manifestDigest);
    await store.removeImage(image.manifestDigest);
    assert.equal(await store.getImage(image.manifestDigest), undefined);
    assert.equal(await store.resolveReference('r:1'), undefined);
    assert.equal(await store.hasLayer(digestOf(tar)), true);
    assert.equal(await countObjects(store.dir), 1);
    await rejectsWith(store.checkout(image.manifestDigest, join(box.base, 'co')), 'IMAGE_NOT_FOUND');
  });

  it('checkout refuses an existing target', async () => {
    const box = await sandbox();
    const store = await Store.open(box.root);
    const image = await storeImage(store, [await tarOf([{ name: 'a', data: 'a' }])]);
    await rejectsWith(store.checkout(image.manifestDigest, box.sentinel), 'IO_ERROR', /already exists/);
  });

  it('importing a stored layer again reads the stream and adds nothing', async () => {
    const box = await sandbox();
    const store = await Store.open(box.root);
    const tar = await tarOf([{ name: 'a', data: 'a' }, { name: 'b', data: 'b' }]);
    const d = digestOf(tar);
    const first = await store.importLayer(d, streamOf(tar));
    const stream = streamOf(tar);
    const second = await store.importLayer(d, stream);
    assert.equal(stream.readableEnded, true);
    assert.deepEqual(second, { entries: first.entries, bytes: first.bytes, newObjects: 0, newBytes: 0 });
  });

  it('without sync(1) it fsyncs each object instead, and the store is the same', async () => {
    const box = await sandbox();
    const store = await Store.open(box.root);
    const path = process.env['PATH'];
    process.env['PATH'] = box.sentinel; // no `sync -f`: the per-object fsync fallback
    try {
      await storeImage(store, [await tarOf([{ name: 'small', data: 's' }, { name: 'ln', type: 'symlink', linkname: 'small' }, { name: 'large', data: Buffer.alloc(200_000, 1) }])]);
    } finally {
      process.env['PATH'] = path;
    }
    assert.equal(await countObjects(store.dir), 2); // regular files; the symlink object is checked by verify
    const r = await store.verify();
    assert.deepEqual({ ok: r.ok, objects: r.checked.objects }, { ok: true, objects: 3 });
  });
});
