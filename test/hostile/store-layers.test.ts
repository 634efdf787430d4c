/**
 * The malicious-layer corpus: each case is imported (and, where import
 * accepts it, checked out); nothing may be written outside the store and the
 * checkout, refusals must be clear, and a refused layer commits nothing.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { digestOf } from '../../src/image/digest.ts';
import type { ErrorCode } from '../../src/errors.ts';
import { Store } from '../../src/store/store.ts';
import { cleanup, listTree, rejectsWith, sandbox, storeImage, streamOf, tarOf, type Spec } from '../unit/store-helpers.ts';

after(cleanup);

/** Import `tar`, expect a refusal, and check that nothing was committed or left in tmp, and the sentinel is intact. */
async function refused(tar: Buffer | Readable, code: ErrorCode, message: RegExp, options: { maxBytes?: number } = {}): Promise<void> {
  const box = await sandbox();
  const before = await box.snapshot();
  const store = await Store.open(box.root);
  const diffId = Buffer.isBuffer(tar) ? digestOf(tar) : digestOf('stream');
  await rejectsWith(store.importLayer(diffId, Buffer.isBuffer(tar) ? streamOf(tar) : tar, options), code, message);
  assert.equal(await store.hasLayer(diffId), false);
  assert.deepEqual(await readdir(join(store.dir, 'layers')), []);
  assert.deepEqual(await readdir(join(store.dir, 'tmp')), []);
  assert.equal(await box.snapshot(), before);
}

/** Import and check out a layer that is accepted; return the tree, and check the sentinel. */
async function accepted(specs: Spec[]): Promise<Map<string, string>> {
  const box = await sandbox();
  const before = await box.snapshot();
  const store = await Store.open(box.root);
  const image = await storeImage(store, [await tarOf(specs)]);
  const co = join(box.base, 'co');
  await store.checkout(image.manifestDigest, co);
  assert.equal(await box.snapshot(), before);
  return listTree(co);
}

/** Rewrite one header field of the tar block at `offset` and fix its checksum. */
function patchHeader(tar: Buffer, offset: number, field: number, bytes: string): Buffer {
  const out = Buffer.from(tar);
  out.write(bytes, offset + field, 'latin1');
  out.fill(0x20, offset + 148, offset + 156);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += out[offset + i]!;
  out.write(`${sum.toString(8).padStart(6, '0')}\0 `, offset + 148, 'latin1');
  return out;
}

describe('store: hostile layers are refused and commit nothing', () => {
  it('"../" paths', async () => {
    await refused(await tarOf([{ name: 'ok', data: 'ok' }, { name: '../escape', data: 'x' }]), 'UNSAFE_PATH', /"\.\.\/escape".*leaves the root/);
  });

  it('".." climbing above the root inside a path', async () => {
    await refused(await tarOf([{ name: 'a/../../escape', data: 'x' }]), 'UNSAFE_PATH', /leaves the root/);
  });

  it('a NUL byte in a name (via PAX)', async () => {
    await refused(await tarOf([{ name: 'x', data: 'x', pax: { path: 'a\0b' } }]), 'UNSAFE_PATH', /NUL/);
  });

  it('an over-long name', async () => {
    await refused(await tarOf([{ name: 'x', data: 'x', pax: { path: `${'d/'.repeat(2100)}f` } }]), 'LAYER_INVALID', /longer than 4096 bytes/);
    await refused(await tarOf([{ name: `dir/${'n'.repeat(256)}`, data: 'x' }]), 'LAYER_INVALID', /name component longer than 255 bytes/);
  });

  it('a hard link to /etc/shadow (not in the layer)', async () => {
    await refused(await tarOf([{ name: 'shadow', type: 'link', linkname: '/etc/shadow' }]), 'LAYER_INVALID', /hard link "shadow" points at "\/etc\/shadow", which is not a regular file earlier in this layer/);
  });

  it('a hard link to ../../x', async () => {
    await refused(await tarOf([{ name: 'x', type: 'link', linkname: '../../x' }]), 'UNSAFE_PATH', /leaves the root/);
  });

  it('a hard link to a symlink or a directory of the same layer', async () => {
    await refused(await tarOf([{ name: 's', type: 'symlink', linkname: '/etc/shadow' }, { name: 'h', type: 'link', linkname: 's' }]), 'LAYER_INVALID', /not a regular file/);
    await refused(await tarOf([{ name: 'd/', type: 'directory' }, { name: 'h', type: 'link', linkname: 'd' }]), 'LAYER_INVALID', /not a regular file/);
  });

  it('whiteouts escaping the root or naming nothing', async () => {
    await refused(await tarOf([{ name: '../.wh.sentinel', data: '' }]), 'UNSAFE_PATH', /leaves the root/);
    await refused(await tarOf([{ name: 'a/.wh..', data: '' }]), 'UNSAFE_PATH', /does not name a file/);
    await refused(await tarOf([{ name: 'a/.wh...', data: '' }]), 'UNSAFE_PATH', /does not name a file/);
    await refused(await tarOf([{ name: '.wh.', data: '' }]), 'UNSAFE_PATH', /does not name a file/);
  });

  it('a huge PAX header is refused from its declared size, before it is buffered', async () => {
    const tar = await tarOf([{ name: 'x', data: 'x', pax: { comment: 'A'.repeat(2 * 1024 * 1024) } }]);
    await refused(tar, 'LAYER_INVALID', /extended header of \d+ bytes exceeds the limit of 1048576/);
    // Even when the stream ends right after the header: the size alone decides.
    await refused(tar.subarray(0, 4096), 'LAYER_INVALID', /extended header/);
  });

  it('many extended headers for one entry add up to the same limit', async () => {
    const oneMiBish = 'A'.repeat(600 * 1024);
    const x = await tarOf([{ name: 'x', data: 'x', pax: { comment: oneMiBish } }]);
    const paxBlocks = x.subarray(0, 512 + Math.ceil((oneMiBish.length + 20) / 512) * 512);
    await refused(Buffer.concat([paxBlocks, x]), 'LAYER_INVALID', /extended header/);
  });

  it('a decompression bomb: a stream larger than maxBytes', async () => {
    const tar = await tarOf([{ name: 'a', data: Buffer.alloc(300_000) }, { name: 'b', data: Buffer.alloc(300_000) }]);
    await refused(tar, 'LAYER_INVALID', /larger than the limit of 500000 bytes/, { maxBytes: 500_000 });
    // An endless stream of zeros after the end-of-archive marker is cut off too.
    const small = await tarOf([{ name: 'a', data: 'a' }]);
    let sent = 0;
    const endless = new Readable({
      read() {
        this.push(sent === 0 ? small : Buffer.alloc(64 * 1024));
        sent++;
      },
    });
    await refused(endless, 'LAYER_INVALID', /larger than the limit of 1000000 bytes/, { maxBytes: 1_000_000 });
    assert.ok(sent < 100);
  });

  it('an entry declaring more data than the limit is refused before its data is read', async () => {
    const tar = await tarOf([{ name: 'a', data: 'a' }]);
    const big = patchHeader(tar, 0, 124, '77777777777\0');
    await refused(big, 'LAYER_INVALID', /declares 8589934591 bytes/, { maxBytes: 1_000_000 });
  });

  it('corrupt headers, sparse files and unknown types', async () => {
    const tar = await tarOf([{ name: 'a', data: 'a' }]);
    const bad = Buffer.from(tar);
    bad[0] = 0x62; // name byte changed, checksum not
    await refused(bad, 'LAYER_INVALID', /checksum/);
    await refused(patchHeader(tar, 0, 156, 'S'), 'LAYER_INVALID', /unsupported type "S"/);
    await refused(await tarOf([{ name: 's', data: 'x', pax: { 'GNU.sparse.major': '1' } }]), 'LAYER_INVALID', /sparse/);
    await refused(tar.subarray(0, 700), 'LAYER_INVALID', /ends in the middle of an entry/);
  });

  it('the root entry as anything but a directory', async () => {
    await refused(await tarOf([{ name: './', type: 'symlink', linkname: '/etc' }]), 'UNSAFE_PATH', /root directory itself/);
  });

  it('link targets with NUL bytes or over-long', async () => {
    await refused(await tarOf([{ name: 's', type: 'symlink', linkname: 'x', pax: { linkpath: 'a\0b' } }]), 'UNSAFE_PATH', /NUL/);
    await refused(await tarOf([{ name: 's', type: 'symlink', linkname: 'x', pax: { linkpath: 'y'.repeat(5000) } }]), 'LAYER_INVALID', /target longer than 4096/);
  });
});

describe('store: hostile layers that are accepted stay inside the root', () => {
  it('absolute paths are made relative', async () => {
    const tree = await accepted([{ name: '/etc/shadow', data: 'image shadow' }, { name: '//abs//dir/./f', data: 'f' }]);
    assert.equal(tree.get('etc/shadow'), 'file 644 0:0 image shadow');
    assert.equal(tree.get('abs/dir/f'), 'file 644 0:0 f');
  });

  it('a symlink, then a write through it (same layer): lands inside the root', async () => {
    const tree = await accepted([
      { name: 'evil', type: 'symlink', linkname: '/' },
      { name: 'evil/etc/shadow', data: 'inside' },
      { name: 'evil2', type: 'symlink', linkname: '../../../../../../..' },
      { name: 'evil2/sentinel/canary', data: 'inside too' },
      { name: 'evil3', type: 'symlink', linkname: '/proc/self/root/etc' },
      { name: 'evil3/passwd', data: 'inside as well' },
    ]);
    assert.equal(tree.get('etc/shadow'), 'file 644 0:0 inside');
    assert.equal(tree.get('sentinel/canary'), 'file 644 0:0 inside too');
    assert.equal(tree.get('proc/self/root/etc/passwd'), 'file 644 0:0 inside as well');
    assert.equal(tree.get('evil'), 'symlink /');
  });

  it('a symlink replaced by a directory entry is not followed', async () => {
    const tree = await accepted([
      { name: 'l', type: 'symlink', linkname: '/etc' },
      { name: 'l/', type: 'directory', mode: 0o700 },
    ]);
    assert.equal(tree.get('l'), 'dir 700 0:0');
  });

  it('devices and fifos are recorded but never created', async () => {
    const tree = await accepted([
      { name: 'dev/sda', type: 'block-device', devmajor: 8, devminor: 0 },
      { name: 'dev/mem', type: 'character-device', devmajor: 1, devminor: 1, mode: 0o666 },
      { name: 'p', type: 'fifo' },
    ]);
    assert.deepEqual([...tree.keys()], ['dev']);
  });
});
