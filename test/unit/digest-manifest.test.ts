import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { digestOf, parseDigest, verifiedStream } from '../../src/image/digest.ts';
import { hostPlatform, MAX_MANIFEST_BYTES, MediaType, parseImageConfig, parseManifest, selectPlatform } from '../../src/image/manifest.ts';

const collect = async (s: Readable) => {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
};

describe('digests', () => {
  it('accepts sha256/sha512 and refuses malformed ones', () => {
    parseDigest(`sha256:${'0'.repeat(64)}`);
    parseDigest(`sha512:${'f'.repeat(128)}`);
    for (const bad of ['sha256:abc', `md5:${'0'.repeat(32)}`, `sha256:${'G'.repeat(64)}`, `sha256:${'0'.repeat(64)}/../x`]) {
      assert.throws(() => parseDigest(bad), { code: 'MANIFEST_INVALID' });
    }
  });

  it('passes matching content through the verifying stream', async () => {
    const data = Buffer.from('hello layer');
    const out = await collect(verifiedStream(Readable.from([data]), digestOf(data), data.length, 'blob'));
    assert.deepEqual(out, data);
  });

  it('fails the stream on a digest mismatch, an oversize and an undersize', async () => {
    const data = Buffer.from('hello layer');
    await assert.rejects(collect(verifiedStream(Readable.from([data]), digestOf('other'), data.length, 'blob')), { code: 'DIGEST_MISMATCH' });
    await assert.rejects(collect(verifiedStream(Readable.from([data]), digestOf(data), 3, 'blob')), { code: 'DIGEST_MISMATCH' });
    await assert.rejects(collect(verifiedStream(Readable.from([data]), digestOf(data), 100, 'blob')), { code: 'DIGEST_MISMATCH' });
  });

  it('propagates a source error', async () => {
    const src = new Readable({ read() { this.destroy(new Error('connection reset')); } });
    await assert.rejects(collect(verifiedStream(src, digestOf('x'), 1, 'blob')), /connection reset/);
  });
});

describe('manifests', () => {
  const desc = (d: string, size = 10) => ({ mediaType: MediaType.ociLayerGzip, digest: digestOf(d), size });
  const manifest = { schemaVersion: 2, mediaType: MediaType.ociManifest, config: { ...desc('c'), mediaType: MediaType.ociConfig }, layers: [desc('l1'), desc('l2')] };

  it('parses an OCI manifest', () => {
    const m = parseManifest(Buffer.from(JSON.stringify(manifest)), MediaType.ociManifest);
    assert.equal(m.kind, 'manifest');
    assert.equal(m.kind === 'manifest' && m.layers.length, 2);
  });

  it('refuses a media type that disagrees with Content-Type, schema 1, oversize and non-JSON', () => {
    assert.throws(() => parseManifest(Buffer.from(JSON.stringify(manifest)), MediaType.dockerManifest), { code: 'MANIFEST_INVALID' });
    assert.throws(() => parseManifest(Buffer.from(JSON.stringify({ schemaVersion: 1 })), undefined), { code: 'MANIFEST_INVALID' });
    assert.throws(() => parseManifest(Buffer.alloc(MAX_MANIFEST_BYTES + 1, 32), undefined), /limit/);
    assert.throws(() => parseManifest(Buffer.from('{"schemaVersion":2,'), undefined), /not JSON/);
    assert.throws(() => parseManifest(Buffer.from(JSON.stringify({ ...manifest, layers: [{ ...desc('x'), digest: '../../etc' }] })), undefined), { code: 'MANIFEST_INVALID' });
  });

  it('selects the host platform from an index, or lists what is there', () => {
    const index = parseManifest(
      Buffer.from(JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.ociIndex,
        manifests: [
          { ...desc('a'), mediaType: MediaType.ociManifest, platform: { os: 'linux', architecture: 's390x' } },
          { ...desc('b'), mediaType: MediaType.ociManifest, platform: hostPlatform() },
        ],
      })),
      undefined,
    );
    assert.equal(index.kind, 'index');
    if (index.kind !== 'index') return;
    assert.equal(selectPlatform(index, hostPlatform(), 'x').digest, digestOf('b'));
    assert.throws(() => selectPlatform(index, { os: 'linux', architecture: 'mips' }, 'img'), /available: linux\/s390x, linux\//);
  });

  it('parses an image config and checks diff_ids', () => {
    const cfg = parseImageConfig(Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Cmd: ['sh'], Env: ['A=1'] }, rootfs: { type: 'layers', diff_ids: [digestOf('x')] } })));
    assert.deepEqual(cfg.config.Cmd, ['sh']);
    assert.throws(() => parseImageConfig(Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Cmd: 'sh' }, rootfs: { type: 'layers', diff_ids: [] } }))), /list of strings/);
  });
});
