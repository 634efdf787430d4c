import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import type { Digest } from '../../src/image/digest.ts';
import { MediaType } from '../../src/image/manifest.ts';
import { parseImageReference } from '../../src/transport/index.ts';
import { DOCKER_LAYER_TAR, parseArchiveManifest } from '../../src/transport/docker-archive/docker_archive_src.ts';
import { openImageSource } from '../../src/transport/index.ts';
import { archivePath, TarIndex } from '../../src/transport/tarfile/tar_index.ts';
import type { ImageSource } from '../../src/transport/types.ts';
import { pullThrough } from '../fixtures/pull-through.ts';
import { buildImage, buildLayerTar, hostOciArch } from '../fixtures/oci-image.ts';

const sha256 = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

interface Entry {
  name: string;
  content?: Buffer | string;
  type?: 'file' | 'directory' | 'symlink';
  linkname?: string;
  pax?: Record<string, string>;
}

async function writeTar(file: string, entries: Entry[]): Promise<void> {
  const pack = tar.pack();
  const done = pipeline(pack, createWriteStream(file));
  for (const e of entries) {
    const content = e.content === undefined ? undefined : Buffer.isBuffer(e.content) ? e.content : Buffer.from(e.content);
    await new Promise<void>((resolve, reject) => {
      const cb = (err?: Error | null) => (err ? reject(err) : resolve());
      const header = { name: e.name, type: e.type ?? 'file', mode: 0o644, mtime: new Date(0), ...(e.linkname ? { linkname: e.linkname } : {}), ...(e.pax ? { pax: e.pax } : {}) };
      if (content) pack.entry({ ...header, size: content.length }, content, cb);
      else pack.entry(header, cb);
    });
  }
  pack.finalize();
  await done;
}

/** Tar a directory tree (an OCI layout) with "./"-prefixed names, as some tools write them. */
async function tarDirectory(dir: string, file: string): Promise<void> {
  const entries: Entry[] = [];
  const walk = async (rel: string) => {
    for (const name of (await readdir(path.join(dir, rel))).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      if ((await stat(path.join(dir, r))).isDirectory()) {
        entries.push({ name: `./${r}/`, type: 'directory' });
        await walk(r);
      } else entries.push({ name: `./${r}`, content: await readFile(path.join(dir, r)) });
    }
  };
  await walk('');
  await writeTar(file, entries);
}

/** Every layer through digest check, decompressor and diff_id check; the parts of the image the tests compare. */
async function pullAll(source: ImageSource): Promise<{ manifestDigest: Digest; mediaType: string; layerTypes: string[] }> {
  const image = await pullThrough(source);
  return { manifestDigest: image.manifestDigest, mediaType: image.manifest.mediaType, layerTypes: image.manifest.layers.map((l) => l.mediaType) };
}

describe('archive paths', () => {
  it('accepts relative names and normalises them', () => {
    assert.equal(archivePath('./abc/layer.tar', 'x', 'a.tar'), 'abc/layer.tar');
    assert.equal(archivePath('blobs/sha256/ab', 'x', 'a.tar'), 'blobs/sha256/ab');
  });

  for (const hostile of ['../../etc/passwd', '/etc/passwd', 'a/../../b', 'a/..', 'a\\..\\b', 'a\0b']) {
    it(`refuses ${JSON.stringify(hostile)} with UNSAFE_PATH`, () => {
      assert.throws(() => archivePath(hostile, 'layer 0', 'a.tar'), { code: 'UNSAFE_PATH' });
    });
  }

  it('refuses non-strings and empty names with MANIFEST_INVALID', () => {
    for (const v of [undefined, 3, '', '.', './', ['a']]) assert.throws(() => archivePath(v, 'x', 'a.tar'), { code: 'MANIFEST_INVALID' });
  });

  it('checks every path in manifest.json', () => {
    const ok = Buffer.from(JSON.stringify([{ Config: 'c.json', RepoTags: ['a:b'], Layers: ['l1/layer.tar'] }]));
    assert.deepEqual(parseArchiveManifest(ok, 'a.tar'), [{ config: 'c.json', repoTags: ['a:b'], layers: ['l1/layer.tar'] }]);
    for (const bad of [
      [{ Config: '../c.json', Layers: [] }],
      [{ Config: 'c.json', Layers: ['../../etc/passwd'] }],
      [{ Config: 'c.json', Layers: ['/etc/shadow'] }],
    ]) assert.throws(() => parseArchiveManifest(Buffer.from(JSON.stringify(bad)), 'a.tar'), { code: 'UNSAFE_PATH' });
    for (const bad of ['{}', '[]', '[1]', '[{"Config":"c","Layers":"x"}]', '[{"Config":"c","Layers":[],"RepoTags":[1]}]', 'nope']) {
      assert.throws(() => parseArchiveManifest(Buffer.from(bad), 'a.tar'), { code: 'MANIFEST_INVALID' }, bad);
    }
  });
});

describe('archives', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'berth-archive-'));
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  it('indexes tar entries with long names, PAX paths and odd sizes', async () => {
    const file = path.join(dir, 'index.tar');
    const long = `${'d'.repeat(120)}/${'f'.repeat(120)}`;
    await writeTar(file, [
      { name: 'dir/', type: 'directory' },
      { name: 'dir/a', content: 'x'.repeat(513) },
      { name: long, content: 'long' },
      { name: 'short-in-header', content: 'pax', pax: { path: 'pax/renamed' } },
      { name: 'link', type: 'symlink', linkname: 'dir/a' },
      { name: 'sub/rel', type: 'symlink', linkname: '../dir/a' },
      { name: 'sub/out', type: 'symlink', linkname: '../../etc/passwd' },
      { name: 'sub/abs', type: 'symlink', linkname: '/etc/passwd' },
      { name: 'loop1', type: 'symlink', linkname: 'loop2' },
      { name: 'loop2', type: 'symlink', linkname: 'loop1' },
      { name: './dot/b', content: '' },
    ]);
    const idx = await TarIndex.open(file);
    assert.equal((await idx.read('dir/a', 1000, 'a'))!.toString(), 'x'.repeat(513));
    assert.equal((await idx.read(long, 1000, 'long'))!.toString(), 'long');
    assert.equal((await idx.read('pax/renamed', 1000, 'pax'))!.toString(), 'pax');
    // Links resolve inside the archive only.
    assert.equal((await idx.read('link', 1000, 'link'))!.toString(), 'x'.repeat(513));
    assert.equal(idx.get('sub/rel')?.name, 'dir/a');
    for (const n of ['sub/out', 'sub/abs', 'loop1', 'nothing']) assert.equal(idx.get(n), undefined, n);
    assert.equal((await idx.read('dot/b', 10, 'b'))!.length, 0);
    await assert.rejects(idx.read('dir/a', 100, 'a'), { code: 'MANIFEST_INVALID' });
    const chunks: Buffer[] = [];
    for await (const c of idx.stream(idx.get('dir/a')!, 500)) chunks.push(c as Buffer);
    assert.equal(Buffer.concat(chunks).length, 13);
  });

  it('refuses compressed and corrupt archives clearly', async () => {
    const gz = path.join(dir, 'x.tar.gz');
    await writeFile(gz, gzipSync(Buffer.alloc(2048)));
    await assert.rejects(TarIndex.open(gz), (e: { code?: string; message?: string }) => e.code === 'USAGE' && /gzip/.test(e.message!));
    const junk = path.join(dir, 'junk.tar');
    await writeFile(junk, Buffer.alloc(1024, 0x41));
    await assert.rejects(TarIndex.open(junk), { code: 'LAYER_INVALID' }); // the tar decoder's code, as for layers
    await assert.rejects(TarIndex.open(path.join(dir, 'missing.tar')), { code: 'IMAGE_NOT_FOUND' });
  });

  it('reads an oci-archive (a tarred OCI layout) by ref name', async () => {
    const layout = path.join(dir, 'layout');
    const built = await buildImage(layout, 'web', { busybox: false, layers: [[{ path: 'www/index.html', content: 'hi\n' }]] });
    await buildImage(layout, 'other', { busybox: false, layers: [[{ path: 'x', content: 'x' }]], compression: 'none' });
    const file = path.join(dir, 'oci.tar');
    await tarDirectory(layout, file);
    const source = await openImageSource(parseImageReference(`oci-archive:${file}:web`), { tlsVerify: true });
    try {
      const r = await pullAll(source);
      assert.equal(r.manifestDigest, built.manifestDigest);
      // Resuming a blob part-way gives its tail.
      const layer = built.layers[0]!;
      const tail: Buffer[] = [];
      for await (const c of await source.getBlob({ mediaType: layer.mediaType, digest: layer.digest as Digest, size: layer.size }, { offset: 10 })) tail.push(c as Buffer);
      assert.equal(Buffer.concat(tail).length, layer.size - 10);
    } finally {
      await source.close();
    }
    const ambiguous = await openImageSource(parseImageReference(`oci-archive:${file}`), {});
    await assert.rejects(ambiguous.getManifest(), { code: 'USAGE' });
    const missing = await openImageSource(parseImageReference(`oci-archive:${file}:nope`), {});
    await assert.rejects(missing.getManifest(), (e: { code?: string; message?: string }) => e.code === 'IMAGE_NOT_FOUND' && /web/.test(e.message!));
  });

  async function dockerArchive(file: string, manifest: unknown, extra: Entry[] = []): Promise<{ configDigest: string; layerDigests: string[] }> {
    const l1 = await buildLayerTar([{ path: 'etc/hello', content: 'hello\n' }]);
    const l2 = await buildLayerTar([{ path: 'etc/bye', content: 'bye\n' }]);
    const l2gz = gzipSync(l2);
    const config = JSON.stringify({ architecture: hostOciArch(), os: 'linux', config: { Cmd: ['/bin/sh'] }, rootfs: { type: 'layers', diff_ids: [sha256(l1), sha256(l2)] } });
    await writeTar(file, [
      { name: 'manifest.json', content: JSON.stringify(manifest) },
      { name: 'cfg.json', content: config },
      { name: 'l1/layer.tar', content: l1 },
      { name: 'l2/layer.tar', content: l2gz },
      ...extra,
    ]);
    return { configDigest: sha256(config), layerDigests: [sha256(l1), sha256(l2gz)] };
  }

  it('reads a docker-archive, synthesising a schema 2 manifest with real digests', async () => {
    const file = path.join(dir, 'docker.tar');
    const d = await dockerArchive(file, [
      { Config: 'cfg.json', RepoTags: ['example/one:1'], Layers: ['l1/layer.tar', 'l2/layer.tar'] },
      { Config: 'cfg.json', RepoTags: ['quay.io/example/two:2'], Layers: ['l1/layer.tar', 'l2/layer.tar'] },
    ]);
    for (const sel of [':example/one:1', ':docker.io/example/one:1', ':@1', ':quay.io/example/two:2']) {
      const source = await openImageSource(parseImageReference(`docker-archive:${file}${sel}`), {});
      try {
        const r = await pullAll(source);
        assert.equal(r.mediaType, MediaType.dockerManifest);
        assert.deepEqual(r.layerTypes, [DOCKER_LAYER_TAR, MediaType.dockerLayerGzip]);
        const m = JSON.parse((await source.getManifest()).untrustedBytes.toString()) as { config: { digest: string }; layers: { digest: string }[] };
        assert.equal(m.config.digest, d.configDigest);
        assert.deepEqual(m.layers.map((l) => l.digest), d.layerDigests);
      } finally {
        await source.close();
      }
    }
    await assert.rejects(openImageSource(parseImageReference(`docker-archive:${file}`), {}), { code: 'USAGE' });
    await assert.rejects(openImageSource(parseImageReference(`docker-archive:${file}:@5`), {}), { code: 'IMAGE_NOT_FOUND' });
    await assert.rejects(openImageSource(parseImageReference(`docker-archive:${file}:nope:1`), {}), { code: 'IMAGE_NOT_FOUND' });
  });

  it('refuses a docker-archive whose manifest.json points outside the archive', async () => {
    const file = path.join(dir, 'hostile.tar');
    await dockerArchive(file, [{ Config: 'cfg.json', RepoTags: [], Layers: ['l1/layer.tar', '../../etc/passwd'] }], [{ name: 'etc/passwd', content: 'root:x:0:0::/:/bin/sh\n' }]);
    await assert.rejects(openImageSource(parseImageReference(`docker-archive:${file}`), {}), (e: { code?: string; message?: string }) => {
      assert.equal(e.code, 'UNSAFE_PATH');
      assert.match(e.message!, /\.\.\/\.\.\/etc\/passwd/);
      return true;
    });
  });

  it('caps the config of a docker-archive', async () => {
    const file = path.join(dir, 'bigconfig.tar');
    await writeTar(file, [
      { name: 'manifest.json', content: JSON.stringify([{ Config: 'big.json', Layers: [] }]) },
      { name: 'big.json', content: Buffer.alloc(4 * 1024 * 1024 + 1, 0x20) },
    ]);
    await assert.rejects(openImageSource(parseImageReference(`docker-archive:${file}`), {}), { code: 'MANIFEST_INVALID' });
  });
});
