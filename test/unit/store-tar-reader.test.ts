/** The store's tar reader on hand-made archives: formats, extended headers, limits. */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { isBerthError } from '../../src/errors.ts';
import { digestOf } from '../../src/image/digest.ts';
import { Store } from '../../src/store/store.ts';
import type { TarHeader } from '../../src/image/tar-header.ts';
import { TarReader } from '../../src/store/tar-reader.ts';
import { allFiles, cleanup, imageOf, sandbox, streamOf, tarOf } from './store-helpers.ts';
import { END, file, header, padded, pax } from './tar-blocks.ts';

after(cleanup);

async function read(tar: Buffer, limits = { maxBytes: 1 << 30, maxExtendedHeaderBytes: 1 << 20 }): Promise<(TarHeader & { data: string })[]> {
  const r = new TarReader(streamOf(tar, { chunk: 333 }), limits);
  const out: (TarHeader & { data: string })[] = [];
  for (let h = await r.next(); h !== null; h = await r.next()) {
    const chunks: Buffer[] = [];
    for await (const c of r.data()) chunks.push(c);
    out.push({ ...h, data: Buffer.concat(chunks).toString() });
  }
  await r.drain();
  return out;
}

async function fails(tar: Buffer, message: RegExp): Promise<void> {
  await assert.rejects(read(tar), (e: unknown) => {
    assert.ok(isBerthError(e) && e.code === 'LAYER_INVALID', String(e));
    assert.match(e.message, message);
    return true;
  });
}

describe('tar reader', () => {
  it('reads ustar, GNU and v7 headers, the ustar prefix, and v7 directories', async () => {
    const entries = await read(
      Buffer.concat([
        file('plain', 'p'),
        file('name', 'prefixed', { prefix: 'long/prefix' }),
        file('gnu-ignores-prefix', 'g', { magic: 'gnu', prefix: 'not/a/prefix' }),
        header({ name: 'v7dir/', type: '\0', magic: 'v7' }),
        file('contig', 'c', { type: '7' }),
        END,
      ]),
    );
    assert.deepEqual(entries.map((e) => [e.name, e.type, e.data]), [
      ['plain', 'file', 'p'],
      ['long/prefix/name', 'file', 'prefixed'],
      ['gnu-ignores-prefix', 'file', 'g'],
      ['v7dir/', 'dir', ''],
      ['contig', 'file', 'c'],
    ]);
  });

  it('applies GNU long names and PAX records (PAX wins), including fractional mtimes and big ids', async () => {
    const longName = `${'n'.repeat(150)}/file`;
    const gnuLong = Buffer.concat([header({ name: '././@LongLink', type: 'L', size: longName.length + 1 }), padded(Buffer.from(`${longName}\0`))]);
    const entries = await read(
      Buffer.concat([
        gnuLong,
        file('short', 'gnu'),
        gnuLong,
        pax([['path', 'pax/wins'], ['uid', '4000000000'], ['gid', '7'], ['mtime', '1234.5']]),
        file('short', 'both'),
        header({ name: 'sym', type: '2', linkname: 'short-target' }),
        pax([['linkpath', `/${'t'.repeat(300)}`]]),
        header({ name: 'sym2', type: '2', linkname: 'x' }),
        END,
      ]),
    );
    assert.equal(entries[0]!.name, longName);
    assert.deepEqual([entries[1]!.name, entries[1]!.uid, entries[1]!.gid, entries[1]!.mtime, entries[1]!.data], ['pax/wins', 4000000000, 7, 1234.5, 'both']);
    assert.equal(entries[2]!.linkname, 'short-target');
    assert.equal(entries[3]!.linkname, `/${'t'.repeat(300)}`);
  });

  it('a global PAX header that sets a used key is refused (readers disagree on it); others are ignored; an empty local value deletes', async () => {
    await fails(Buffer.concat([pax([['uid', '99']], 'g'), file('a', 'a'), END]), /global extended header sets "uid"/);
    const entries = await read(
      Buffer.concat([pax([['comment', 'git archive']], 'g'), file('a', 'a', { uid: 3 }), pax([['uid', '']]), file('b', 'b', { uid: 5 }), END]),
    );
    assert.deepEqual(entries.map((e) => e.uid), [3, 5]);
  });

  it('decodes GNU base-256 numbers', async () => {
    const uid = Buffer.from([0x80, 0, 0, 0, 0, 0, 0x10, 0]); // 4096
    const [e] = await read(Buffer.concat([file('a', 'a', { uid }), END]));
    assert.equal(e!.uid, 4096);
  });

  it('keeps SCHILY.xattr values as raw bytes', async () => {
    const cap = Buffer.from([0x01, 0x00, 0x00, 0x02, 0xff, 0xfe, 0x80, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]); // v2, effective, non-ASCII bytes
    const [e] = await read(Buffer.concat([pax([['SCHILY.xattr.security.capability', cap], ['SCHILY.xattr.user.note', 'hi']]), file('ping', 'x'), END]));
    assert.ok(e!.xattrs.get('security.capability')?.equals(cap));
    assert.equal(e!.xattrs.get('user.note')?.toString(), 'hi');
  });

  it('header-only types carry no data whatever their size field says (as Go archive/tar)', async () => {
    const entries = await read(Buffer.concat([header({ name: 'l', type: '2', linkname: 't', size: 1000 }), header({ name: 'd/', type: '5', size: 2000 }), file('f', 'after'), END]));
    assert.deepEqual(entries.map((e) => [e.name, e.size, e.data]), [['l', 0, ''], ['d/', 0, ''], ['f', 5, 'after']]);
  });

  it('ends at a zero block followed by a zero block or the end of the stream; data after a single zero block is refused', async () => {
    assert.equal((await read(Buffer.concat([file('a', 'a'), Buffer.alloc(512)]))).length, 1);
    assert.equal((await read(file('a', 'a'))).length, 1);
    assert.equal((await read(Buffer.concat([file('a', 'a'), END, Buffer.alloc(5000)]))).length, 1);
    await fails(Buffer.concat([file('a', 'a'), Buffer.alloc(512), file('hidden', 'h'), END]), /zero block is followed by data/);
  });

  it('refuses malformed PAX records, truncation, and an extended header without an entry', async () => {
    const bad = Buffer.concat([header({ name: 'p', type: 'x', size: 12 }), padded(Buffer.from('99 path=abc\n')), file('a', 'a'), END]);
    await fails(bad, /malformed PAX record/);
    await fails(Buffer.concat([pax([['path', 'x']]), END]), /extended header is not followed by an entry/);
    await fails(Buffer.concat([header({ name: 'a', size: 5000 }), Buffer.alloc(100)]), /ends in the middle of an entry/);
    await fails(Buffer.concat([pax([['size', '-1']]), file('a', 'a'), END]), /invalid PAX size/);
  });

  it('reads nothing before it is asked (backpressure), and hands out slices without copying', async () => {
    let pulled = 0;
    const tar = await tarOf([{ name: 'big', data: Buffer.alloc(1 << 20, 1) }, { name: 'small', data: 's' }]);
    const chunks = Array.from({ length: Math.ceil(tar.length / 65536) }, (_, i) => tar.subarray(i * 65536, (i + 1) * 65536));
    const source = Readable.from(
      (function* () {
        for (const c of chunks) {
          pulled++;
          yield c;
        }
      })(),
    );
    const r = new TarReader(source, { maxBytes: 1 << 30, maxExtendedHeaderBytes: 1 << 20 });
    await r.next();
    const before = pulled;
    assert.ok(before <= 2 + 16, `pulled ${before} chunks for a header`); // Readable.from reads ahead a little
    let n = 0;
    for await (const c of r.data()) n += c.length;
    assert.equal(n, 1 << 20);
    await r.close();
  });
});

describe('store: xattrs from PAX', () => {
  it('are part of the object key, kept in a sidecar, and verified', async () => {
    const box = await sandbox();
    const store = await Store.open(box.root);
    const cap = Buffer.from([0x01, 0x00, 0x00, 0x02, 0xff, 0xfe, 0x80, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]); // v2, effective, non-ASCII bytes
    const tar = Buffer.concat([
      pax([['SCHILY.xattr.security.capability', cap]]),
      file('bin/ping', 'same bytes', { mode: 0o755 }),
      file('bin/plain', 'same bytes', { mode: 0o755 }),
      END,
    ]);
    const image = imageOf([tar]);
    const r = await store.importLayer(digestOf(tar), streamOf(tar));
    await store.putImage({ ...image, signatures: [] });
    assert.equal(r.newObjects, 2, 'same content, different xattrs: two objects');
    const sidecars = (await allFiles(join(store.dir, 'objects'))).filter((f) => f.endsWith('.xattrs'));
    assert.equal(sidecars.length, 1);
    const side = JSON.parse(await readFile(sidecars[0]!, 'utf8')) as Record<string, string>;
    assert.ok(Buffer.from(side['security.capability']!, 'base64').equals(cap));
    assert.equal((await store.verify()).ok, true);
    const co = join(box.base, 'co');
    await store.checkout(image.manifestDigest, co);
    assert.deepEqual((await readdir(join(co, 'bin'))).sort(), ['ping', 'plain']);
  });
});
