import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, readdir, readFile, truncate, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { digestOf } from '../../src/image/digest.ts';
import { Store } from '../../src/store/store.ts';
import { allFiles, cleanup, countObjects, exists, rejectsWith, sandbox, storeImage, streamOf, tarOf } from './store-helpers.ts';

after(cleanup);

function objectFile(store: Store, key: string): string {
  return join(store.dir, 'objects', key.slice(0, 2), key.slice(2));
}

/** The key of the object holding `content` (there must be exactly one). */
async function keyOf(store: Store, content: string): Promise<string> {
  const found: string[] = [];
  for (const f of await allFiles(join(store.dir, 'objects'))) {
    if ((await readFile(f, 'utf8')) === content) found.push(f.slice(-65).replace('/', ''));
  }
  assert.equal(found.length, 1, `objects with content ${content}`);
  return found[0]!;
}

describe('store: verify', () => {
  it('a healthy store verifies', async () => {
    const box = await sandbox();
    const store = await Store.open(box.root);
    await storeImage(store, [await tarOf([{ name: 'a', data: 'a' }, { name: 'b', data: 'b', mode: 0o4755 }])]);
    const r = await store.verify();
    assert.deepEqual(r, { ok: true, checked: { objects: 2, layers: 1, images: 1 }, problems: [], repaired: 0 });
  });

  it('detects a modified object; repair drops it and what needs it, and the next pull restores them', async () => {
    const box = await sandbox();
    const store = await Store.open(box.root);
    const lower = await tarOf([{ name: 'etc/os-release', data: 'ID=test' }]);
    const upper = await tarOf([{ name: 'bin/tool', data: 'original tool', mode: 0o755 }]);
    const image = await storeImage(store, [lower, upper]);
    await store.setReference('test/app:1', image.manifestDigest);
    const key = await keyOf(store, 'original tool');
    await writeFile(objectFile(store, key), 'tampered tool'); // same size, other bytes

    const found = await store.verify();
    assert.equal(found.ok, false);
    assert.equal(found.repaired, 0);
    assert.match(found.problems[0]!, new RegExp(`object ${key} is corrupt: its content or metadata changed`));
    assert.ok(found.problems.some((p) => p.includes(`layer ${digestOf(upper)} needs 1 missing or corrupt object`)));
    // Named by its references too (issue 16): `image DIGEST (REF, ...) needs ...`.
    assert.ok(found.problems.some((p) => p.startsWith(`image ${image.manifestDigest}`) && p.includes('needs 1 missing or damaged layer')), found.problems.join('\n'));
    assert.equal(await exists(objectFile(store, key)), true, 'verify alone changes nothing');

    const repaired = await store.verify({ repair: true });
    assert.equal(repaired.ok, false);
    assert.equal(repaired.repaired, 3); // the object, the upper layer record, the image record
    assert.equal(await exists(objectFile(store, key)), false);
    assert.equal(await store.hasLayer(digestOf(upper)), false);
    assert.equal(await store.hasLayer(digestOf(lower)), true);
    assert.equal(await store.getImage(image.manifestDigest), undefined);
    assert.equal(await store.resolveReference('test/app:1'), image.manifestDigest, 'references are kept for the next pull');
    assert.equal((await store.verify()).ok, true);

    await storeImage(store, [lower, upper]);
    const co = join(box.base, 'co');
    await store.checkout(image.manifestDigest, co);
    assert.equal(await readFile(join(co, 'bin/tool'), 'utf8'), 'original tool');
    assert.equal((await store.verify()).ok, true);
  });

  it('detects changed metadata (chmod) and damaged or stray records', async () => {
    const box = await sandbox();
    const store = await Store.open(box.root);
    const t1 = await tarOf([{ name: 'a', data: 'a' }]);
    const t2 = await tarOf([{ name: 'b', data: 'b' }]);
    const i1 = await storeImage(store, [t1]);
    const i2 = await storeImage(store, [t2]);
    await chmod(objectFile(store, await keyOf(store, 'a')), 0o4777);
    const layerFile = join(store.dir, 'layers', `sha256-${digestOf(t2).slice(7)}`);
    const text = await readFile(layerFile, 'utf8');
    await writeFile(layerFile, text.replace('"b"', '"c"'));
    const imageFile = join(store.dir, 'images', `sha256-${i1.manifestDigest.slice(7)}`);
    await truncate(imageFile, 100);
    await writeFile(join(store.dir, 'objects', 'stray'), 'x');
    const r = await store.verify({ repair: true });
    assert.equal(r.ok, false);
    const text2 = r.problems.join('\n');
    assert.match(text2, /stray entry objects\/stray/);
    assert.match(text2, /object [0-9a-f]{64} is corrupt: its content or metadata changed/);
    assert.match(text2, new RegExp(`layer record ${digestOf(t2)} is damaged: the record checksum does not match`));
    assert.match(text2, new RegExp(`image record ${i1.manifestDigest} is damaged`));
    assert.match(text2, new RegExp(`image ${i2.manifestDigest} needs 1 missing or damaged layer`));
    assert.deepEqual(await store.listImages(), []);
    assert.equal((await store.verify()).ok, true);
  });

  it('reading a damaged record or a missing object fails loudly with STORE_CORRUPT', async () => {
    const box = await sandbox();
    const store = await Store.open(box.root);
    const image = await storeImage(store, [await tarOf([{ name: 'a', data: 'a' }])]);
    await unlink(objectFile(store, await keyOf(store, 'a')));
    await rejectsWith(store.checkout(image.manifestDigest, join(box.base, 'co')), 'STORE_CORRUPT', /missing/);
    assert.equal(await exists(join(box.base, 'co')), false);
    const imageFile = join(store.dir, 'images', `sha256-${image.manifestDigest.slice(7)}`);
    await writeFile(imageFile, (await readFile(imageFile, 'utf8')).replace('"created":"', '"created":"x'));
    assert.ok(await store.getImage(image.manifestDigest)); // not covered by a digest, and harmless
    await writeFile(imageFile, '{');
    await rejectsWith(store.getImage(image.manifestDigest), 'STORE_CORRUPT', /damaged/);
  });
});

describe('store: gc', () => {
  it('frees images neither kept nor referenced, then their layers, then their objects', async () => {
    const box = await sandbox();
    const store = await Store.open(box.root);
    const base = await tarOf([{ name: 'base', data: 'shared base' }]);
    const a = await storeImage(store, [base, await tarOf([{ name: 'a', data: 'only in a' }])]);
    const b = await storeImage(store, [base, await tarOf([{ name: 'b', data: 'only in b' }])]);
    const c = await storeImage(store, [base, await tarOf([{ name: 'c', data: 'only in c' }, { name: 'c2', data: 'also only in c' }])]);
    await store.setReference('test/a:1', a.manifestDigest);
    assert.equal(await countObjects(store.dir), 5);

    const r = await store.gc(new Set([b.manifestDigest]));
    assert.deepEqual(r, { images: 1, layers: 1, objects: 2, bytes: 'only in c'.length + 'also only in c'.length });
    assert.equal(await store.getImage(c.manifestDigest), undefined);
    assert.ok(await store.getImage(a.manifestDigest));
    assert.ok(await store.getImage(b.manifestDigest));
    assert.equal(await countObjects(store.dir), 3);
    assert.equal((await store.verify()).ok, true);
    await store.checkout(a.manifestDigest, join(box.base, 'co-a'));
    await store.checkout(b.manifestDigest, join(box.base, 'co-b'));

    assert.deepEqual(await store.gc(new Set([b.manifestDigest])), { images: 0, layers: 0, objects: 0, bytes: 0 });
    await store.removeReference('test/a:1');
    const r2 = await store.gc(new Set());
    assert.deepEqual(r2, { images: 2, layers: 3, objects: 3, bytes: 'shared base'.length + 'only in a'.length + 'only in b'.length });
    assert.equal(await countObjects(store.dir), 0);
    assert.deepEqual(await readdir(join(store.dir, 'layers')), []);
    // Checkouts keep their files: the inodes outlive the store's names.
    assert.equal(await readFile(join(box.base, 'co-a', 'a'), 'utf8'), 'only in a');
  });

  it('collects orphan objects of layers that never got a record, and layers no image lists', async () => {
    const box = await sandbox();
    const store = await Store.open(box.root);
    const t = await tarOf([{ name: 'x', data: 'orphan' }, { name: 'y', data: 'with xattrs', pax: { 'SCHILY.xattr.user.k': 'v' } }]);
    await store.importLayer(digestOf(t), streamOf(t));
    assert.equal((await allFiles(join(store.dir, 'objects'))).length, 3); // two objects, one sidecar
    const r = await store.gc(new Set());
    assert.deepEqual(r, { images: 0, layers: 1, objects: 2, bytes: 'orphan'.length + 'with xattrs'.length });
    assert.deepEqual(await allFiles(join(store.dir, 'objects')), []);
  });

  it('refuses to guess when a kept image cannot be read', async () => {
    const box = await sandbox();
    const store = await Store.open(box.root);
    const image = await storeImage(store, [await tarOf([{ name: 'a', data: 'a' }])]);
    await writeFile(join(store.dir, 'images', `sha256-${image.manifestDigest.slice(7)}`), '{');
    await rejectsWith(store.gc(new Set([image.manifestDigest])), 'STORE_CORRUPT');
    assert.equal(await countObjects(store.dir), 1);
  });
});
