/**
 * Failure atomicity: a stream that fails (a digest mismatch found at its
 * end), a process killed in the middle of an import, concurrent imports.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { BerthError } from '../../src/errors.ts';
import { digestOf, VerifyingStream } from '../../src/image/digest.ts';
import { Store } from '../../src/store/store.ts';
import { cleanup, countObjects, imageOf, listTree, sandbox, streamOf, tarOf } from './store-helpers.ts';

after(cleanup);

const REPO = resolve(import.meta.dirname, '../..');

async function manyFiles(n: number, size: number): Promise<Buffer> {
  return tarOf(Array.from({ length: n }, (_, i) => ({ name: `d${i % 7}/f${i}`, data: randomBytes(size) })));
}

async function nothingCommitted(store: Store, diffId: ReturnType<typeof digestOf>): Promise<void> {
  assert.equal(await store.hasLayer(diffId), false);
  assert.deepEqual(await readdir(join(store.dir, 'layers')), []);
  assert.deepEqual(await readdir(join(store.dir, 'tmp')), []);
}

describe('store: failed streams commit nothing', () => {
  it('a stream that ends with an error (digest mismatch) is rethrown as is', async () => {
    const box = await sandbox();
    const store = await Store.open(box.root);
    const tar = await manyFiles(30, 5000);
    const mismatch = new BerthError('DIGEST_MISMATCH', 'uncompressed layer has digest sha256:...', { hint: 'tampered' });
    await assert.rejects(store.importLayer(digestOf(tar), streamOf(tar, { failAtEnd: mismatch })), (e) => e === mismatch);
    await nothingCommitted(store, digestOf(tar));
  });

  it('the real thing: a VerifyingStream whose diff_id does not match', async () => {
    const box = await sandbox();
    const store = await Store.open(box.root);
    const tar = await manyFiles(30, 5000);
    const wrong = digestOf('something else');
    const verifier = new VerifyingStream(wrong, undefined, 'uncompressed layer (diff_id)');
    await assert.rejects(store.importLayer(wrong, streamOf(tar).pipe(verifier)), (e: unknown) => e instanceof BerthError && e.code === 'DIGEST_MISMATCH');
    await nothingCommitted(store, wrong);
    // Trailing bytes after the end-of-archive marker are read too, so the digest covers them.
    const padded = Buffer.concat([tar, Buffer.alloc(10_240)]);
    const right = new VerifyingStream(digestOf(padded), undefined, 'layer');
    await store.importLayer(digestOf(padded), streamOf(padded).pipe(right));
    assert.equal(await store.hasLayer(digestOf(padded)), true);
  });

  it('a stream failing in the middle (a network error) is rethrown as is', async () => {
    const box = await sandbox();
    const store = await Store.open(box.root);
    const tar = await manyFiles(30, 5000);
    const reset = Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    let off = 0;
    const s = new Readable({
      read() {
        if (off > tar.length / 2) return void this.destroy(reset);
        this.push(tar.subarray(off, (off += 1000)));
      },
    });
    await assert.rejects(store.importLayer(digestOf(tar), s), (e) => e === reset);
    await nothingCommitted(store, digestOf(tar));
  });
});

describe('store: an import killed midway', () => {
  it('leaves nothing visible: verify passes after, and a new import completes', async () => {
    const box = await sandbox();
    const tar = await manyFiles(400, 3000);
    const diffId = digestOf(tar);
    const tarFile = join(box.base, 'layer.tar');
    await writeFile(tarFile, tar);
    // A first, complete layer so the store has something to verify around the wreck.
    const first = await tarOf([{ name: 'base', data: 'base' }]);
    {
      const store = await Store.open(box.root);
      await store.importLayer(digestOf(first), streamOf(first));
    }
    const child = join(box.base, 'child.mts');
    await writeFile(
      child,
      `import { readFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { Store } from ${JSON.stringify(join(REPO, 'src/store/store.ts'))};
const [root, file, diffId] = process.argv.slice(2);
const tar = await readFile(file);
const store = await Store.open(root);
let off = 0;
const s = new Readable({
  read() {
    if (off < tar.length * 0.6) this.push(tar.subarray(off, (off += 4096)));
    else process.stdout.write('stalled\\n'); // and never another byte
  },
});
await store.importLayer(diffId, s);
`,
    );
    const proc = spawn(process.execPath, ['--import', 'tsx', child, box.root, tarFile, diffId], { cwd: REPO, stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((res, rej) => {
      proc.stdout.on('data', (d: Buffer) => {
        if (d.toString().includes('stalled')) res();
      });
      proc.once('exit', (code) => rej(new Error(`child exited early (${code})`)));
    });
    const exited = new Promise((res) => proc.once('exit', res));
    proc.kill('SIGKILL');
    await exited;

    // The wreck: a staging directory of the dead process, no layer record.
    const leftovers = await readdir(join(box.root, 'store/tmp'));
    assert.ok(leftovers.some((n) => n.startsWith(`${proc.pid}.`)), `staging of the killed import: ${leftovers.join(',')}`);

    const store = await Store.open(box.root);
    assert.deepEqual(await readdir(join(store.dir, 'tmp')), [], 'open clears staging of dead processes');
    assert.equal(await store.hasLayer(diffId), false);
    const v = await store.verify();
    assert.deepEqual(v.problems, []);
    assert.equal(v.ok, true);

    const r = await store.importLayer(diffId, streamOf(tar));
    assert.equal(r.entries, 400);
    const image = imageOf([first, tar]);
    await store.putImage({ ...image, signatures: [] });
    const tree = await listTree(await (async () => {
      const co = join(box.base, 'co');
      await store.checkout(image.manifestDigest, co);
      return co;
    })());
    assert.equal([...tree.values()].filter((v) => v.startsWith('file')).length, 401);
    assert.equal((await store.verify()).ok, true);
  });
});

describe('store: concurrent imports', () => {
  it('the same layer twice at once: both succeed, one record, each object once', async () => {
    const box = await sandbox();
    const store = await Store.open(box.root);
    const tar = await manyFiles(100, 2000);
    const d = digestOf(tar);
    const [a, b] = await Promise.all([store.importLayer(d, streamOf(tar)), store.importLayer(d, streamOf(tar))]);
    assert.equal(a.entries, b.entries);
    assert.equal(await store.hasLayer(d), true);
    assert.equal(await countObjects(store.dir), 100);
    assert.deepEqual(await readdir(join(store.dir, 'tmp')), []);
    assert.equal((await store.verify()).ok, true);
  });

  it('the same layer from two Store instances (as two pulls would) at once', async () => {
    const box = await sandbox();
    const s1 = await Store.open(box.root);
    const s2 = await Store.open(box.root);
    const tar = await manyFiles(100, 2000);
    const d = digestOf(tar);
    await Promise.all([s1.importLayer(d, streamOf(tar, { chunk: 300 })), s2.importLayer(d, streamOf(tar, { chunk: 5000 }))]);
    assert.equal(await countObjects(s1.dir), 100);
    assert.equal((await s1.verify()).ok, true);
  });

  it('different layers sharing files at once', async () => {
    const box = await sandbox();
    const store = await Store.open(box.root);
    const shared = Array.from({ length: 50 }, (_, i) => ({ name: `s/${i}`, data: randomBytes(1500) }));
    const t1 = await tarOf([...shared, { name: 'one', data: '1' }]);
    const t2 = await tarOf([...shared.map((s) => ({ ...s, name: `other/${s.name}` })), { name: 'two', data: '2' }]);
    await Promise.all([store.importLayer(digestOf(t1), streamOf(t1)), store.importLayer(digestOf(t2), streamOf(t2))]);
    assert.equal(await countObjects(store.dir), 52);
    assert.equal((await store.verify()).ok, true);
  });
});
