/**
 * A misbehaving registry (demanding Basic credentials) against `berth pull`:
 * a blob and a manifest that drip below the minimum rate (so the idle
 * timeout never fires), a blob redirected to another host (followed without
 * credentials), redirects to other schemes, and gigantic headers.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, afterEach, before, describe, it } from 'node:test';
import { MediaType } from '../../src/image/manifest.ts';
import type { BuiltImage } from '../fixtures/oci-image.ts';
import { drip, HostileRegistry, selfSignedCertificate } from './hostile-registry.ts';
import { assertRefused, HostileScene } from './scene.ts';

const USER = 'puller';
const PASSWORD = 'secret';
const REPO = 'evil/registry';
/** A floor the drips stay far below, over a short window (the default is 1 KiB/s over a minute). */
const FAST_FLOOR = { BERTH_MIN_RATE: '4096/1' };

describe('hostile registry behaviour', () => {
  let scene: HostileScene;
  let image: BuiltImage;
  let blobPath: string;

  before(async () => {
    scene = await HostileScene.start('berth-hostile-registry', { basicAuth: { user: USER, password: PASSWORD }, creds: `${USER}:${PASSWORD}` });
    // A layer of its own (the busybox layer is already stored with the good image).
    image = await scene.build('fresh', { layers: [[{ path: 'opt/data.bin', content: randomBytes(48 * 1024) }]] });
    scene.registry.serveLayout(REPO, scene.env.layout);
    blobPath = `/v2/${REPO}/blobs/${image.layers.at(-1)!.digest}`;
  });

  afterEach(() => scene.registry.reset());

  after(async () => {
    await scene?.stop();
  });

  const pull = (env: Record<string, string> = {}, tag = 'fresh') =>
    scene.berth(['pull', '--tls-verify=false', '--creds', `${USER}:${PASSWORD}`, `docker://${scene.registry.host}/${REPO}:${tag}`], env);

  it('fails a blob that drips below the minimum rate, after resuming', async () => {
    const bytes = await scene.registry.blob(REPO, image.layers.at(-1)!.digest);
    // 10 bytes every 50 ms: never idle, about 200 bytes/s; every resume drips again.
    scene.registry.on(blobPath, drip(bytes, 'application/octet-stream', 50, 10));
    const r = await scene.unchangedBy(() => pull(FAST_FLOOR));
    assertRefused(r, 4, /blob sha256:[0-9a-f]+ of .*: download broke off after \d+ of \d+ bytes \(continued 3 time\(s\)\): .*bytes in [\d.]+s after \d+ of \d+ bytes, below the minimum of 4096 bytes\/s over 1s/);
    assert.ok(scene.registry.requests.filter((q) => q.path === blobPath).length >= 4, 'resumed before giving up');
  });

  it('fails a manifest that drips below the minimum rate', async () => {
    const manifest = JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociManifest, config: {}, layers: [] }).padEnd(64 * 1024, ' ');
    scene.registry.on(`/v2/${REPO}/manifests/drip`, drip(Buffer.from(manifest), MediaType.ociManifest, 50, 10));
    assertRefused(await scene.unchangedBy(() => pull(FAST_FLOOR, 'drip')), 4, /manifest of .*: \d+ bytes in [\d.]+s, below the minimum of 4096 bytes\/s over 1s/);
  });

  it('refuses a malformed BERTH_MIN_RATE', async () => {
    assertRefused(await scene.unchangedBy(() => pull({ BERTH_MIN_RATE: 'fast' })), 2, /BERTH_MIN_RATE="fast" is not BYTES\/SECONDS/);
  });

  it('follows a blob redirect to another host without the credentials (the digest check vouches for the bytes)', async () => {
    scene.registry.on(blobPath, (req, res, listener) => {
      if (listener === 'other') return false;
      res.writeHead(307, { location: `${scene.registry.otherOrigin}${req.url}` }).end();
    });
    const r = await pull();
    assert.equal(r.code, 0, r.stderr);
    const asked = scene.registry.requests.filter((q) => q.path === blobPath);
    assert.deepEqual(asked.map((q) => q.listener), ['registry', 'other']);
    assert.match(String(asked[0]!.headers.authorization), /^Basic /);
    assert.equal(asked[1]!.headers.authorization, undefined, 'no credentials for the other host');
    assert.ok(scene.registry.requests.filter((q) => q.listener === 'other').every((q) => q.headers.authorization === undefined));
    await scene.nothingLost();
    // Forget it again, layers included, so the cases below must fetch the blob.
    assert.equal((await scene.berth(['rmi', `docker://${scene.registry.host}/${REPO}:fresh`])).code, 0);
    assert.equal((await scene.berth(['prune'])).code, 0);
  });

  for (const location of ['file:///etc/shadow', 'ftp://127.0.0.2/blob', 'gopher://127.0.0.2/blob']) {
    it(`refuses a redirect to ${location.split(':')[0]}:`, async () => {
      scene.registry.on(blobPath, (_req, res) => void res.writeHead(302, { location }).end());
      const r = await scene.unchangedBy(() => pull());
      assertRefused(r, 4, new RegExp(`refusing the redirect of ${blobPath.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} to "${location.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}": ${location.split(':')[0]}: is not HTTPS`));
      assert.equal(scene.registry.requests.filter((q) => q.listener === 'other').length, 0, 'nothing followed');
    });
  }

  it('refuses a redirect from HTTPS down to plain HTTP, even with --tls-verify=false', async () => {
    const tlsRegistry = await HostileRegistry.start({ tls: await selfSignedCertificate() });
    try {
      tlsRegistry.serveLayout(REPO, scene.env.layout);
      tlsRegistry.on(blobPath, (req, res, listener) => {
        if (listener === 'other') return false;
        res.writeHead(307, { location: `${tlsRegistry.otherOrigin}${req.url}` }).end();
      });
      const r = await scene.unchangedBy(() => scene.berth(['pull', '--tls-verify=false', `docker://${tlsRegistry.host}/${REPO}:fresh`]));
      assertRefused(r, 4, /refusing the redirect of .* to "http:\/\/127\.0\.0\.2:\d+\/.*": a step down from HTTPS to plain HTTP/);
      assert.ok(tlsRegistry.requests.some((q) => q.listener === 'registry' && q.path === blobPath), 'the registry was asked over TLS');
      assert.equal(tlsRegistry.requests.filter((q) => q.listener === 'other').length, 0, 'nothing followed');
    } finally {
      await tlsRegistry.stop();
    }
  });

  it('ends gigantic response headers in a clear error', async () => {
    scene.registry.on(`/v2/${REPO}/manifests/fresh`, (_req, res) => void res.writeHead(200, { 'content-type': MediaType.ociManifest, 'x-filler': 'x'.repeat(256 * 1024) }).end('{}'));
    assertRefused(await scene.unchangedBy(() => pull()), 4, /the registry sent oversized headers for \/v2\/evil\/registry\/manifests\/fresh \(over \d+ KiB\)/);
  });
});
