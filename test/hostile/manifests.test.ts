/**
 * Hostile manifests, served by a registry to `berth pull`: a wrong or
 * mismatched media type, invalid JSON, duplicate members, 10,000 layers, an
 * oversized document, an index served again for its own child, and an
 * index nested in an index. Each is refused with exit 5 (integrity) and a
 * one-line error; nothing is written and the good image survives.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { digestOf } from '../../src/image/digest.ts';
import { hostPlatform, MAX_LAYERS, MediaType } from '../../src/image/manifest.ts';
import { assertRefused, GOOD_REPO, HostileScene } from './scene.ts';

const REPO = 'evil/manifest';

describe('hostile manifests', () => {
  let scene: HostileScene;
  /** The good image's manifest, as an object to tamper with. */
  let good: { config: unknown; layers: unknown[] };
  let goodBytes: Buffer;

  before(async () => {
    scene = await HostileScene.start('berth-hostile-manifests');
    goodBytes = await readFile(path.join(scene.env.layout, 'blobs', ...scene.good.manifestDigest.split(':')));
    good = JSON.parse(goodBytes.toString('utf8')) as typeof good;
    // The tampered manifests refer to the good image's blobs, so only the manifest is at fault.
    scene.registry.serveLayout(REPO, scene.env.layout);
  });

  after(async () => {
    await scene?.stop();
  });

  const pull = (ref = '1') => scene.unchangedBy(() => scene.berth(['pull', '--tls-verify=false', `docker://${scene.registry.host}/${REPO}:${ref}`]));
  const serve = (body: string | Buffer, contentType: string | undefined) => scene.registry.manifest(REPO, '1', body, contentType);
  const manifest = (extra: Record<string, unknown> = {}) => JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociManifest, config: good.config, layers: good.layers, ...extra });

  it('the untampered manifest pulls (the cases below differ only in what they say)', async () => {
    serve(manifest(), MediaType.ociManifest);
    const r = await scene.berth(['pull', '--tls-verify=false', `docker://${scene.registry.host}/${REPO}:1`]);
    assert.equal(r.code, 0, r.stderr);
  });

  it('refuses a media type berth did not ask for', async () => {
    serve(JSON.stringify({ schemaVersion: 2, config: good.config, layers: good.layers }), 'text/html');
    assertRefused(await pull(), 5, /manifest of .*evil\/manifest:1 is invalid: media type text\/html is not supported/);
  });

  it('refuses a Content-Type that disagrees with the body', async () => {
    serve(manifest(), MediaType.dockerManifest);
    assertRefused(await pull(), 5, /served as application\/vnd\.docker\.distribution\.manifest\.v2\+json but its mediaType is application\/vnd\.oci\.image\.manifest\.v1\+json/);
  });

  it('refuses invalid JSON', async () => {
    serve(manifest().slice(0, -5), MediaType.ociManifest);
    assertRefused(await pull(), 5, /is invalid: not JSON \(/);
  });

  it('refuses a duplicated member (parsers disagree on which one wins)', async () => {
    // JSON.parse would keep the second, empty "layers": an image with no layers.
    serve(`${manifest().slice(0, -1)},"layers":[]}`, MediaType.ociManifest);
    assertRefused(await pull(), 5, /is invalid: not JSON \(duplicate member "layers"/);
  });

  it(`refuses 10,000 layers (the limit is ${MAX_LAYERS})`, async () => {
    const layers = Array.from({ length: 10_000 }, (_, i) => ({ mediaType: MediaType.ociLayerGzip, digest: digestOf(`layer ${i}`), size: 32 }));
    serve(manifest({ layers }), MediaType.ociManifest);
    assertRefused(await pull(), 5, new RegExp(`it has 10000 layers, the limit is ${MAX_LAYERS}`));
  });

  it('refuses a manifest over 4 MiB unread', async () => {
    serve(Buffer.alloc(5 * 1024 * 1024, 0x20), MediaType.ociManifest);
    assertRefused(await pull(), 5, /manifest of .* is 5242880 bytes, the limit is 4194304/);
  });

  it('refuses an index served again for its own child (it cannot name itself: the digest check catches it)', async () => {
    const platform = hostPlatform();
    const index = JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [{ mediaType: MediaType.ociManifest, digest: digestOf('the index itself'), size: 1, platform }] });
    scene.registry.on(new RegExp(`^/v2/${REPO}/manifests/`), (_req, res) => void res.writeHead(200, { 'content-type': MediaType.ociIndex }).end(index));
    assertRefused(await pull(), 5, /has digest sha256:[0-9a-f]{64}, expected sha256:[0-9a-f]{64}/);
    scene.registry.reset();
  });

  it('refuses an index nested in an index', async () => {
    const platform = hostPlatform();
    const inner = JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [{ mediaType: MediaType.ociManifest, digest: scene.good.manifestDigest, size: goodBytes.length, platform }] });
    const outer = JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [{ mediaType: MediaType.ociIndex, digest: digestOf(inner), size: Buffer.byteLength(inner), platform }] });
    scene.registry.manifest(REPO, digestOf(inner), inner, MediaType.ociIndex);
    scene.registry.manifest(REPO, 'nested', outer, MediaType.ociIndex);
    assertRefused(await pull('nested'), 5, /lists another index .*berth follows one level of index/);
  });

  it('still serves the good image as it was', async () => {
    const r = await scene.berth(['pull', '--tls-verify=false', `docker://${scene.registry.host}/${GOOD_REPO}:good`]);
    assert.equal(r.code, 0, r.stderr);
    await scene.nothingLost();
  });
});
