// share/reader.ts on a plain directory laid out as a share: found (verified), absent, and
// unavailable for a missing marker, tampered bytes, and a probe that runs out of time.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { digestOf, type Digest } from '../../src/image/digest.ts';
import { ShareLayout } from '../../src/share/layout.ts';
import { findSharedImage, missingInRootfs, shareHolds } from '../../src/share/reader.ts';

const root = mkdtempSync(path.join(os.tmpdir(), 'berth-share-unit-'));
after(() => rmSync(root, { recursive: true, force: true }));
const layout = new ShareLayout(root);
const limits = { maxSignatures: 4, maxSignatureBytes: 64 * 1024 };
const query = { registry: 'reg.example:5000', repository: 'apps/web', tag: '1' };

const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, config: {} }));
const manifest = Buffer.from(
  JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digestOf(config), size: config.length },
    layers: [],
  }),
);
const digest: Digest = digestOf(manifest);

function populate(): void {
  rmSync(root, { recursive: true, force: true });
  mkdirSync(path.join(layout.rootfs(digest), 'proc'), { recursive: true });
  writeFileSync(layout.marker, '{"format":"berth-share","version":1}\n');
  writeFileSync(path.join(layout.image(digest), 'manifest.json'), manifest);
  writeFileSync(path.join(layout.image(digest), 'config.json'), config);
  writeFileSync(path.join(layout.image(digest), 'image.json'), JSON.stringify({ reference: 'reg.example:5000/apps/web:1', digest, published: '2026-01-01T00:00:00Z', size: 0 }));
  mkdirSync(path.dirname(layout.ref('reg.example:5000/apps/web', '1')), { recursive: true });
  writeFileSync(layout.ref('reg.example:5000/apps/web', '1'), `${digest}\n`);
  const sigDir = path.join(layout.lookaside, `apps/web@sha256=${digest.slice(7)}`);
  mkdirSync(sigDir, { recursive: true });
  writeFileSync(path.join(sigDir, 'signature-1'), 'sig one');
  writeFileSync(path.join(sigDir, 'signature-2'), 'sig two');
}

test('found by tag and by digest: verified bytes, rootfs, signatures in order', async () => {
  populate();
  for (const q of [query, { ...query, tag: undefined, digest }]) {
    const r = await findSharedImage(root, q, limits);
    assert.equal(r.kind, 'found', JSON.stringify(r));
    if (r.kind !== 'found') return;
    assert.equal(r.image.digest, digest);
    assert.equal(r.image.rootfs, layout.rootfs(digest));
    assert.deepEqual(r.image.untrustedSignatures.map(String), ['sig one', 'sig two']);
    assert.deepEqual(r.image.manifestBytes, manifest);
  }
  assert.deepEqual(await shareHolds(root, digest), { holds: true });
  assert.deepEqual(await missingInRootfs(layout.rootfs(digest), ['/proc', '/sys']), ['/sys']);
});

test('absent: no ref for the tag, or the ref names an image that is gone', async () => {
  populate();
  const r = await findSharedImage(root, { ...query, tag: '2' }, limits);
  assert.equal(r.kind, 'absent');
  rmSync(layout.image(digest), { recursive: true });
  const gone = await findSharedImage(root, query, limits);
  assert.equal(gone.kind, 'absent', JSON.stringify(gone));
  assert.deepEqual(await shareHolds(root, digest), { holds: false });
});

test('unavailable: no marker (not mounted), tampered manifest or config, a probe out of time', async () => {
  populate();
  rmSync(layout.marker);
  const r = await findSharedImage(root, query, limits);
  assert.equal(r.kind, 'unavailable');
  assert.match(r.kind === 'unavailable' ? r.reason : '', /not mounted, or not a berth share/);

  populate();
  writeFileSync(path.join(layout.image(digest), 'manifest.json'), Buffer.concat([manifest, Buffer.from(' ')]));
  const t = await findSharedImage(root, query, limits);
  assert.equal(t.kind, 'unavailable');
  assert.match(t.kind === 'unavailable' ? t.reason : '', /has digest/);

  populate();
  writeFileSync(path.join(layout.image(digest), 'config.json'), Buffer.concat([config, Buffer.from(' ')]));
  const c = await findSharedImage(root, query, limits);
  assert.match(c.kind === 'unavailable' ? c.reason : c.kind, /the manifest names/);

  populate();
  const slow = await findSharedImage(root, query, limits, 1);
  assert.equal(slow.kind, 'unavailable');
  assert.match(slow.kind === 'unavailable' ? slow.reason : '', /did not answer/);
  assert.ok('unknown' in (await shareHolds(root, digest, 1)));
});
