/**
 * The tar differential: a hostile corpus read by both tar readers, the
 * store's streaming TarReader (in several chunkings) and the transports'
 * random-access scanTar/TarIndex. They must agree entry by entry (every
 * header field, the data) and accept or refuse the same archives with the
 * same code and reason. Each case also pins the expected outcome, so that a
 * rule changed in both readers at once is noticed too.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, open, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isBerthError } from '../../src/errors.ts';
import type { TarHeader } from '../../src/image/tar-header.ts';
import { TarReader } from '../../src/store/tar-reader.ts';
import { scanTar, TarIndex } from '../../src/transport/tarfile/tar_index.ts';
import { hasCommand } from '../harness/util.ts';
import { streamOf, tarOf } from './store-helpers.ts';
import { END, extended, file, header, padded, pax, paxRecords } from './tar-blocks.ts';

interface Outcome {
  headers: TarHeader[];
  /** Data of each entry, only when the archive is accepted. */
  data?: string[];
  /** `CODE: reason`, the reason without the archive's name and offset. */
  refused?: string;
}

function refusal(e: unknown): string {
  if (!isBerthError(e)) throw e; // anything else is a bug, not a refusal
  const why = /is not a valid tar archive: (.*) \(at byte \d+\)$/.exec(e.message)?.[1] ?? e.message;
  return `${e.code}: ${why}`;
}

async function viaStream(tar: Buffer, chunk: number): Promise<Outcome> {
  // No byte budget: that is the stream's own policy, not a header decision.
  const r = new TarReader(streamOf(tar, { chunk }), { maxBytes: Number.MAX_SAFE_INTEGER, maxExtendedHeaderBytes: 1 << 20 });
  const headers: TarHeader[] = [];
  const data: string[] = [];
  try {
    for (let h = await r.next(); h !== null; h = await r.next()) {
      headers.push(h);
      const parts: Buffer[] = [];
      for await (const c of r.data()) parts.push(c);
      data.push(Buffer.concat(parts).toString('hex'));
    }
    await r.drain();
    return { headers, data };
  } catch (e) {
    return { headers, refused: refusal(e) };
  } finally {
    await r.close();
  }
}

async function viaIndex(file: string): Promise<Outcome> {
  const handle = await open(file, 'r');
  const headers: TarHeader[] = [];
  const where: number[] = [];
  try {
    await scanTar(handle, 'archive', (h, at) => {
      headers.push(h);
      where.push(at);
    });
    const data: string[] = [];
    for (const [i, h] of headers.entries()) {
      const b = Buffer.alloc(h.size);
      await handle.read(b, 0, h.size, where[i]!);
      data.push(b.toString('hex'));
    }
    return { headers, data };
  } catch (e) {
    return { headers, refused: refusal(e) };
  } finally {
    await handle.close();
  }
}

const long = `${'d'.repeat(120)}/${'f'.repeat(120)}`;
const longLink = `../${'t'.repeat(200)}`;
const big = (n: number) => Buffer.from([0x80, ...Buffer.alloc(n - 1)]);
const base256 = (v: number, width: number) => {
  const b = big(width);
  b.writeUIntBE(v, width - 6, 6);
  return b;
};
const cap = Buffer.from([0x01, 0x00, 0x00, 0x02, 0xff, 0xfe, 0x80, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
const plain = file('a', 'alpha');
const zero = Buffer.alloc(512);

/** [description, archive, undefined when accepted or the expected reason]. */
type Case = [string, Buffer | (() => Promise<Buffer>), RegExp?];

const corpus: Case[] = [
  // Accepted.
  ['ustar, GNU and v7 headers, the ustar prefix, contiguous files, v7 directories', Buffer.concat([
    file('plain', 'p'),
    file('name', 'prefixed', { prefix: 'long/prefix' }),
    file('gnu-ignores-prefix', 'g', { magic: 'gnu', prefix: 'not/a/prefix' }),
    header({ name: 'v7dir/', type: '\0', magic: 'v7' }),
    file('v7file', 'v', { type: '\0', magic: 'v7' }),
    file('contig', 'c', { type: '7' }),
    END,
  ])],
  ['a signed checksum (historic writers)', Buffer.concat([file('caf\u00e9-\u00fc', 'x', { signedChecksum: true }), END])],
  ['header-only types carry no data whatever their size', Buffer.concat([
    header({ name: 'l', type: '2', linkname: 't', size: 1000 }),
    header({ name: 'h', type: '1', linkname: 'a', size: 3 }),
    header({ name: 'd/', type: '5', size: 2000 }),
    header({ name: 'c', type: '3', size: 10 }),
    header({ name: 'b', type: '4' }),
    header({ name: 'p', type: '6' }),
    file('f', 'after'),
    END,
  ])],
  ['GNU long names and long links', Buffer.concat([
    extended(`${long}\0`, 'L'),
    file('short', 'gnu'),
    extended(`${longLink}\0`, 'K'),
    header({ name: 'sym', type: '2', linkname: 'short-target' }),
    END,
  ])],
  ['PAX path, linkpath, size, ids, mtime and raw xattrs; PAX over GNU', Buffer.concat([
    extended(`${long}\0`, 'L'),
    pax([['path', 'pax/wins'], ['uid', '4000000000'], ['gid', '7'], ['mtime', '1234.5'], ['SCHILY.xattr.security.capability', cap], ['atime', '1']]),
    file('short', 'both'),
    pax([['linkpath', `/${'t'.repeat(300)}`]]),
    header({ name: 'sym2', type: '2', linkname: 'x' }),
    pax([['size', '3']]),
    header({ name: 'sized', size: 1 }),
    padded(Buffer.from('abc')),
    END,
  ])],
  ['an empty PAX value leaves the header field', Buffer.concat([pax([['path', ''], ['uid', '']]), file('kept', 'k', { uid: 5 }), END])],
  ['a global header without keys we use', Buffer.concat([pax([['comment', 'git archive'], ['hdrcharset', 'BINARY']], 'g'), plain, END])],
  ['base-256 size and uid', Buffer.concat([header({ name: 'b256', size: base256(5, 12), uid: base256(4096, 8) }), padded(Buffer.from('12345')), END])],
  ['no end marker (EOF between entries)', plain],
  ['one zero block, then EOF', Buffer.concat([plain, zero])],
  ['bytes after the end marker', Buffer.concat([plain, END, Buffer.alloc(5000, 0x41)])],
  ['an empty file', Buffer.alloc(0)],
  ['only the end marker', END],
  ['tar-stream output with PAX names and links', () =>
    tarOf([
      { name: 'dir/', type: 'directory' },
      { name: 'dir/a', data: 'x'.repeat(513) },
      { name: long, data: 'long' },
      { name: 'renamed', data: 'pax', pax: { path: 'pax/renamed' } },
      { name: 'link', type: 'symlink', linkname: 'dir/a' },
    ])],

  // Refused.
  ['a bad checksum', Buffer.concat([Buffer.from([0x62]), plain.subarray(1), END]), /header checksum mismatch/],
  ['a checksum field that is not a number', Buffer.concat([Buffer.from(plain).fill(0x41, 148, 156), END]), /invalid checksum field/],
  ['a truncated header', plain.subarray(0, 300), /ends in the middle of an entry/],
  ['a header claiming data past EOF', Buffer.concat([header({ name: 'a', size: 5000 }), Buffer.alloc(100)]), /ends in the middle of an entry/],
  ['an 8 GiB size in a small file', Buffer.concat([header({ name: 'a', size: 0o77777777777 }), END]), /ends in the middle of an entry/],
  ['data without its padding', plain.subarray(0, 512 + 5), /ends in the middle of an entry/],
  ['one zero block, then an entry', Buffer.concat([plain, zero, file('hidden', 'h'), END]), /zero block is followed by data/],
  ['one zero block, then garbage', Buffer.concat([plain, zero, Buffer.alloc(512, 0x41)]), /zero block is followed by data/],
  ['one zero block, then a partial block', Buffer.concat([plain, zero, Buffer.alloc(100)]), /ends in the middle of an entry/],
  ['a PAX length longer than the record', Buffer.concat([extended('99 path=abc\n'), plain, END]), /malformed PAX record/],
  ['a PAX length shorter than the record', Buffer.concat([extended('5 path=abc\n'), plain, END]), /malformed PAX record/],
  ['a PAX length that is not a number', Buffer.concat([extended('x2 path=abc\n'), plain, END]), /malformed PAX record length/],
  ['a PAX record without "="', Buffer.concat([extended('10 pathabc\n'), plain, END]), /malformed PAX record/],
  ['a PAX record without its newline', Buffer.concat([extended('11 path=abcd'), plain, END]), /malformed PAX record/],
  ['NUL padding after the PAX records', Buffer.concat([extended(Buffer.concat([paxRecords([['path', 'x']]), Buffer.alloc(4)])), plain, END]), /malformed PAX record/],
  ['a PAX record with an empty key', Buffer.concat([extended('7 =abc\n'), plain, END]), /invalid key/],
  ['a PAX key with a NUL byte', Buffer.concat([pax([['pa\0th', 'x']]), plain, END]), /invalid key/],
  ['a PAX key with a newline', Buffer.concat([pax([['pa\nth', 'x']]), plain, END]), /invalid key/],
  ['a negative PAX size', Buffer.concat([pax([['size', '-1']]), plain, END]), /invalid PAX size/],
  ['a PAX size past 2^53', Buffer.concat([pax([['size', '9999999999999999']]), plain, END]), /invalid PAX size/],
  ['a PAX uid of (uid_t)-1', Buffer.concat([pax([['uid', '4294967295']]), plain, END]), /invalid owner/],
  ['a nonsense PAX mtime', Buffer.concat([pax([['mtime', '1e9']]), plain, END]), /invalid PAX mtime/],
  ['a sparse file', Buffer.concat([pax([['GNU.sparse.major', '1']]), plain, END]), /sparse file/],
  ['an empty xattr name', Buffer.concat([pax([['SCHILY.xattr.', 'x']]), plain, END]), /invalid PAX xattr name/],
  ['a global header that renames', Buffer.concat([pax([['path', 'evil']], 'g'), plain, END]), /global extended header sets "path"/],
  ['a global header with xattrs', Buffer.concat([pax([['SCHILY.xattr.user.x', 'y']], 'g'), plain, END]), /global extended header sets/],
  ['a malformed global header', Buffer.concat([extended('99 comment=x\n', 'g'), plain, END]), /malformed PAX record/],
  ['a huge PAX header, refused from its size', Buffer.concat([header({ name: 'p', type: 'x', size: 2 << 20 }), zero]), /extended header of 2097152 bytes exceeds the limit of 1048576/],
  ['extended headers adding up past the limit', Buffer.concat([
    pax([['comment', 'A'.repeat(400_000)]]),
    pax([['comment', 'B'.repeat(400_000)]]),
    pax([['comment', 'C'.repeat(400_000)]]),
    plain,
    END,
  ]), /exceeds the limit of 1048576/],
  ['a huge GNU long name', Buffer.concat([header({ name: '././@LongLink', type: 'L', size: (1 << 20) + 1 }), zero]), /exceeds the limit/],
  ['a PAX header followed by the end marker', Buffer.concat([plain, pax([['path', 'x']]), END]), /extended header is not followed by an entry/],
  ['a GNU long name followed by EOF', Buffer.concat([plain, extended(`${long}\0`, 'L')]), /extended header is not followed by an entry/],
  ['a PAX header cut short', pax([['comment', 'x'.repeat(600)]]).subarray(0, 700), /ends in the middle of an entry/],
  ['an unsupported type', Buffer.concat([file('s', 'x', { type: 'S' }), END]), /unsupported type "S"/],
  ['an unknown magic', Buffer.concat([file('m', 'x', { magic: 'garbage!' }), END]), /unknown header format/],
  ['ustar magic with another version', Buffer.concat([file('m', 'x', { magic: 'ustar\0xx' }), END]), /unknown header format/],
  ['a negative base-256 size', Buffer.concat([header({ name: 'n', size: Buffer.alloc(12, 0xff) }), END]), /negative size/],
  ['a base-256 size past 2^53', Buffer.concat([header({ name: 'n', size: Buffer.from([0x80, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]) }), END]), /size out of range/],
  ['a mode that is not octal', Buffer.concat([file('m', 'x', { mode: Buffer.from('zz\0') }), END]), /invalid mode field/],
  ['a base-256 uid of (uid_t)-1', Buffer.concat([file('u', 'x', { uid: base256(0xffffffff, 8) }), END]), /invalid owner/],
];

describe('tar differential: both readers agree on a hostile corpus', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'berth-tardiff-'));
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  const check = async (label: string, tar: Buffer, expected: RegExp | 'accepted' | undefined): Promise<void> => {
    const file = path.join(dir, `${label.replace(/[^a-z0-9]+/gi, '-').slice(0, 60)}.tar`);
    await writeFile(file, tar);
    const index = await viaIndex(file);
    for (const chunk of [1 + 512 * 3, 333, tar.length || 1]) {
      const stream = await viaStream(tar, chunk);
      assert.deepStrictEqual(stream, index, `chunks of ${chunk}`);
    }
    // TarIndex.open is what the transports run: the same verdict.
    const opened = await TarIndex.open(file).then(
      () => undefined,
      (e: unknown) => refusal(e),
    );
    assert.equal(opened, index.refused);
    if (expected === 'accepted') assert.equal(index.refused, undefined);
    else if (expected !== undefined) {
      assert.ok(index.refused !== undefined, 'accepted, expected a refusal');
      assert.match(index.refused, /^LAYER_INVALID: /);
      assert.match(index.refused, expected);
    }
  };

  for (const [label, make, refused] of corpus) {
    it(`${refused === undefined ? 'accepts' : 'refuses'} ${label}`, async () => {
      await check(label, typeof make === 'function' ? await make() : make, refused ?? 'accepted');
    });
  }

  it('agrees on archives written by GNU tar (gnu and posix formats)', { skip: !hasCommand('tar') }, async () => {
    const src = path.join(dir, 'tree');
    await mkdir(path.join(src, 'd'.repeat(120), 'e'.repeat(120)), { recursive: true });
    await writeFile(path.join(src, 'd'.repeat(120), 'e'.repeat(120), 'f'.repeat(100)), 'deep');
    await writeFile(path.join(src, 'plain'), 'plain');
    await symlink(`../${'l'.repeat(150)}`, path.join(src, 'longlink'));
    for (const format of ['gnu', 'posix']) {
      const out = path.join(dir, `gnutar-${format}.tar`);
      execFileSync('tar', [`--format=${format}`, '--sort=name', '-cf', out, '-C', src, '.']);
      const tar = await readFile(out);
      await check(`gnutar-${format}`, tar, 'accepted');
      const { headers } = await viaIndex(out);
      assert.ok(headers.some((h) => h.name.endsWith('f'.repeat(100))) && headers.some((h) => h.linkname.length > 150), format);
    }
  });
});
