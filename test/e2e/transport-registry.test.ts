/**
 * The docker transport against a real registry: every layer format skopeo
 * pushes (gzip, zstd, uncompressed; OCI and Docker schema 2), a two-platform
 * index, pinned digests, and registries.conf (short names, mirrors,
 * insecure, blocked).
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, it } from 'node:test';
import { decompressor } from '../../src/image/compression.ts';
import { verifiedStream, VerifyingStream, type Digest } from '../../src/image/digest.ts';
import { layerCompression, MediaType } from '../../src/image/manifest.ts';
import { parseImageReference } from '../../src/transport/index.ts';
import { resolveImage } from '../../src/transport/resolve.ts';
import { openImageSource } from '../../src/transport/index.ts';
import type { ImageSource, SourceOptions } from '../../src/transport/types.ts';
import { buildImage, hostOciArch, MEDIA_TYPE_INDEX, REF_NAME_ANNOTATION, sha256Hex } from '../fixtures/oci-image.ts';
import { skopeoCopy, TestRegistry, unusedPort } from '../harness/registry.ts';

const OTHER_ARCH = hostOciArch() === 'arm64' ? 'amd64' : 'arm64';

/** resolveImage + every layer through digest check, decompressor and diff_id check. */
async function pullAll(source: ImageSource, platform?: string) {
  const image = await resolveImage(source, platform ? { platform: { os: 'linux', architecture: platform } } : {});
  for (const [i, layer] of image.manifest.layers.entries()) {
    const what = `layer ${i} of ${source.description}`;
    const compressed = verifiedStream(await source.getBlob(layer), layer.digest, layer.size, what);
    const uncompressed = new VerifyingStream(image.config.rootfs.diff_ids[i]!, undefined, `${what} diff_id`);
    await pipeline(compressed, decompressor(layerCompression(layer.mediaType), { what }), uncompressed, async function* (s) {
      for await (const _ of s) void _;
    });
  }
  return image;
}

async function open(ref: string, options: SourceOptions) {
  return openImageSource(parseImageReference(ref), options);
}

async function withSource<T>(ref: string, options: SourceOptions, fn: (s: ImageSource) => Promise<T>): Promise<T> {
  const s = await open(ref, options);
  try {
    return await fn(s);
  } finally {
    await s.close();
  }
}

/** Push a layout's image blob by blob over the distribution API (skopeo would compress the layers). */
async function pushVerbatim(layout: string, tag: string, host: string, repo: string, ref: string): Promise<string> {
  const index = JSON.parse(await readFile(path.join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string; annotations?: Record<string, string> }[] };
  const desc = index.manifests.find((m) => m.annotations?.[REF_NAME_ANNOTATION] === tag)!;
  const blob = (d: string) => readFile(path.join(layout, 'blobs', 'sha256', d.slice(7)));
  const manifestBytes = await blob(desc.digest);
  const manifest = JSON.parse(manifestBytes.toString()) as { mediaType: string; config: { digest: string }; layers: { digest: string }[] };
  for (const d of [manifest.config, ...manifest.layers]) {
    const post = await fetch(`http://${host}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
    assert.equal(post.status, 202);
    const loc = new URL(post.headers.get('location')!, `http://${host}`);
    loc.searchParams.set('digest', d.digest);
    const put = await fetch(loc, { method: 'PUT', body: await blob(d.digest), headers: { 'content-type': 'application/octet-stream' } });
    assert.equal(put.status, 201, await put.text());
  }
  const put = await fetch(`http://${host}/v2/${repo}/manifests/${ref}`, { method: 'PUT', body: manifestBytes, headers: { 'content-type': manifest.mediaType } });
  assert.equal(put.status, 201, await put.text());
  return desc.digest;
}

/** Add an index of `tags` (with their platforms) to the layout as `name`. */
async function addIndex(layout: string, name: string, tags: Record<string, string>): Promise<void> {
  const indexFile = path.join(layout, 'index.json');
  const index = JSON.parse(await readFile(indexFile, 'utf8')) as { manifests: { mediaType: string; digest: string; size: number; annotations?: Record<string, string> }[] };
  const manifests = Object.entries(tags).map(([tag, arch]) => {
    const d = index.manifests.find((m) => m.annotations?.[REF_NAME_ANNOTATION] === tag)!;
    return { mediaType: d.mediaType, digest: d.digest, size: d.size, platform: { architecture: arch, os: 'linux' } };
  });
  const bytes = JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPE_INDEX, manifests });
  await writeFile(path.join(layout, 'blobs', 'sha256', sha256Hex(bytes)), bytes);
  index.manifests.push({ mediaType: MEDIA_TYPE_INDEX, digest: `sha256:${sha256Hex(bytes)}`, size: bytes.length, annotations: { [REF_NAME_ANNOTATION]: name } });
  await writeFile(indexFile, JSON.stringify(index));
}

describe('docker transport against docker-registry', () => {
  let reg: TestRegistry;
  let dir: string;
  let emptyConf: string;
  let deadHost: string;
  let base: SourceOptions;
  let gzDigest: string;

  const writeConf = async (name: string, text: string) => {
    const f = path.join(dir, name);
    await writeFile(f, text);
    return f;
  };

  before(async () => {
    reg = await TestRegistry.start();
    dir = await mkdtemp(path.join(tmpdir(), 'berth-transport-'));
    emptyConf = await writeConf('empty.conf', '');
    deadHost = `127.0.0.1:${await unusedPort()}`;
    base = { tlsVerify: false, registriesConf: emptyConf, retry: { baseDelayMs: 10 } };
    const layout = path.join(dir, 'layout');
    const files = [[{ path: 'etc/berth.txt', content: 'berth\n'.repeat(1000) }, { path: 'bin/tool', content: Buffer.alloc(50_000, 7), executable: true }]];
    const gz = await buildImage(layout, 'gz', { busybox: false, layers: files, config: { Cmd: ['/bin/tool'] } });
    gzDigest = gz.manifestDigest;
    await buildImage(layout, 'raw', { busybox: false, compression: 'none', layers: files });
    await buildImage(layout, 'host', { busybox: false, layers: [[{ path: 'arch', content: hostOciArch() }]] });
    await buildImage(layout, 'other', { busybox: false, layers: [[{ path: 'arch', content: OTHER_ARCH }]], architecture: OTHER_ARCH });
    await addIndex(layout, 'multi', { host: hostOciArch(), other: OTHER_ARCH });
    const push = ['--dest-tls-verify=false'];
    await Promise.all([
      skopeoCopy(`oci:${layout}:gz`, `docker://${reg.host}/formats/oci-gzip:1`, push),
      skopeoCopy(`oci:${layout}:gz`, `docker://${reg.host}/formats/oci-zstd:1`, [...push, '--dest-compress-format', 'zstd']),
      skopeoCopy(`oci:${layout}:gz`, `docker://${reg.host}/formats/v2s2:1`, [...push, '--format', 'v2s2']),
      skopeoCopy(`oci:${layout}:multi`, `docker://${reg.host}/formats/multi:1`, [...push, '--all']),
      pushVerbatim(layout, 'raw', reg.host, 'formats/oci-raw', '1'),
    ]);
  });

  after(async () => {
    await reg?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const formats: [string, string, string][] = [
    ['oci-gzip', MediaType.ociManifest, MediaType.ociLayerGzip],
    ['oci-zstd', MediaType.ociManifest, MediaType.ociLayerZstd],
    ['oci-raw', MediaType.ociManifest, MediaType.ociLayer],
    ['v2s2', MediaType.dockerManifest, MediaType.dockerLayerGzip],
  ];
  for (const [repo, manifestType, layerType] of formats) {
    it(`pulls ${repo}: ${layerType.split('.').pop()} layers verify against digests and diff_ids`, async () => {
      const image = await withSource(`docker://${reg.host}/formats/${repo}:1`, base, (s) => pullAll(s));
      assert.equal(image.manifest.mediaType, manifestType);
      assert.deepEqual(image.manifest.layers.map((l) => l.mediaType), [layerType]);
      assert.deepEqual(image.config.config.Cmd ?? ['/bin/tool'], ['/bin/tool']);
    });
  }

  it('picks the host platform from an index, or the one asked for', async () => {
    const host = await withSource(`docker://${reg.host}/formats/multi:1`, base, (s) => pullAll(s));
    assert.equal(host.config.architecture, hostOciArch());
    const other = await withSource(`docker://${reg.host}/formats/multi:1`, { ...base, platform: `linux/${OTHER_ARCH}` }, (s) => pullAll(s));
    assert.equal(other.config.architecture, OTHER_ARCH);
    const viaResolve = await withSource(`docker://${reg.host}/formats/multi:1`, base, (s) => pullAll(s, OTHER_ARCH));
    assert.equal(viaResolve.manifestDigest, other.manifestDigest);
    await assert.rejects(withSource(`docker://${reg.host}/formats/multi:1`, { ...base, platform: 'linux/s390x' }, (s) => pullAll(s)), (e: { code?: string; message?: string }) => {
      assert.equal(e.code, 'IMAGE_NOT_FOUND');
      assert.match(e.message!, new RegExp(`linux/${OTHER_ARCH}`));
      return true;
    });
  });

  it('pulls by digest, and refuses a digest the registry does not have', async () => {
    const image = await withSource(`docker://${reg.host}/formats/oci-gzip@${gzDigest}`, base, (s) => pullAll(s));
    assert.equal(image.manifestDigest, gzDigest);
    await assert.rejects(withSource(`docker://${reg.host}/formats/oci-gzip@sha256:${'0'.repeat(64)}`, base, (s) => pullAll(s)), { code: 'IMAGE_NOT_FOUND' });
    await assert.rejects(withSource(`docker://${reg.host}/formats/nope:1`, base, (s) => pullAll(s)), { code: 'IMAGE_NOT_FOUND' });
  });

  describe('registries.conf', () => {
    it('resolves a short name through the search registries, first hit wins', async () => {
      const conf = await writeConf('search.conf', [
        `unqualified-search-registries = ["${deadHost}", "${reg.host}"]`,
        `[[registry]]\nlocation = "${deadHost}"\ninsecure = true`,
        `[[registry]]\nlocation = "${reg.host}"\ninsecure = true`,
      ].join('\n'));
      // tlsVerify unset: registries.conf's insecure = true applies.
      const s = await open('formats/oci-gzip:1', { registriesConf: conf, retry: { baseDelayMs: 10 } });
      try {
        assert.equal(s.reference.transport, 'docker');
        assert.equal(s.description, `docker://${reg.host}/formats/oci-gzip:1`);
        assert.equal((await pullAll(s)).manifestDigest, gzDigest);
      } finally {
        await s.close();
      }
      await assert.rejects(open('formats/absent:1', { registriesConf: conf }), (e: { code?: string; message?: string; details?: string[] }) => {
        assert.equal(e.code, 'IMAGE_NOT_FOUND');
        assert.match(e.message!, new RegExp(`tried ${deadHost}, ${reg.host}`));
        assert.equal(e.details!.length, 2);
        assert.match(e.details![0]!, /connection refused/);
        return true;
      });
    });

    it('refuses a short name when no search registries are configured', async () => {
      await assert.rejects(open('formats/oci-gzip:1', { registriesConf: emptyConf }), { code: 'INVALID_REFERENCE' });
    });

    it('pulls through a mirror before the primary', async () => {
      const conf = await writeConf('mirror.conf', [
        '[[registry]]', 'prefix = "example.test/formats"', `location = "${deadHost}/formats"`, 'insecure = true',
        '[[registry.mirror]]', `location = "${reg.host}/formats"`, 'insecure = true',
      ].join('\n'));
      const s = await open('docker://example.test/formats/oci-gzip:1', { registriesConf: conf });
      try {
        assert.equal((await pullAll(s)).manifestDigest, gzDigest);
      } finally {
        await s.close();
      }
    });

    it('falls back to the primary when mirrors are down or lack the image', async () => {
      const conf = await writeConf('fallback.conf', [
        '[[registry]]', 'prefix = "example.test/formats"', `location = "${reg.host}/formats"`, 'insecure = true',
        '[[registry.mirror]]', `location = "${deadHost}/formats"`, 'insecure = true',
        '[[registry.mirror]]', `location = "${reg.host}/elsewhere"`, 'insecure = true',
      ].join('\n'));
      const s = await open('docker://example.test/formats/v2s2:1', { registriesConf: conf, retry: { baseDelayMs: 10 } });
      try {
        assert.equal((await pullAll(s)).manifest.mediaType, MediaType.dockerManifest);
      } finally {
        await s.close();
      }
      // All down: the error names every place tried.
      const dead = await writeConf('dead.conf', ['[[registry]]', 'prefix = "example.test/formats"', `location = "${deadHost}/formats"`, 'insecure = true', '[[registry.mirror]]', `location = "${reg.host}/elsewhere"`, 'insecure = true'].join('\n'));
      await assert.rejects(withSource('docker://example.test/formats/v2s2:1', { registriesConf: dead }, (x) => x.getManifest()), (e: { code?: string; details?: string[] }) => {
        assert.equal(e.code, 'REGISTRY_UNREACHABLE');
        assert.match(e.details!.join('\n'), /mirror docker:\/\/127\.0\.0\.1:\d+\/elsewhere\/v2s2:1: image .* not found/);
        return true;
      });
    });

    it('refuses a blocked registry before any request', async () => {
      const conf = await writeConf('blocked.conf', `[[registry]]\nlocation = "${reg.host}"\nblocked = true\n`);
      await assert.rejects(open(`docker://${reg.host}/formats/oci-gzip:1`, { tlsVerify: false, registriesConf: conf }), (e: { code?: string; exitCode?: number }) => e.code === 'REGISTRY_BLOCKED' && e.exitCode === 8);
    });

    it('applies insecure from registries.conf unless --tls-verify says otherwise', async () => {
      const insecure = await writeConf('insecure.conf', `[[registry]]\nlocation = "${reg.host}"\ninsecure = true\n`);
      const ref = `docker://${reg.host}/formats/oci-gzip:1`;
      assert.equal((await withSource(ref, { registriesConf: insecure }, (s) => pullAll(s))).manifestDigest, gzDigest);
      // An explicit true wins over the file; without the file, TLS is required.
      await assert.rejects(withSource(ref, { registriesConf: insecure, tlsVerify: true }, (s) => s.getManifest()), (e: { code?: string; hint?: string }) => e.code === 'REGISTRY_UNREACHABLE' && /tls-verify=false/.test(e.hint!));
      await assert.rejects(withSource(ref, { registriesConf: emptyConf }, (s) => s.getManifest()), { code: 'REGISTRY_UNREACHABLE' });
      assert.equal((await withSource(ref, { registriesConf: emptyConf, tlsVerify: false }, (s) => s.getManifest())).claimedDigest, gzDigest as Digest);
    });
  });
});
