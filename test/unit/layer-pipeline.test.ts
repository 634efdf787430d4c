/**
 * The layer pipeline (src/ops/layer-pipeline.ts) on an in-memory source:
 * layers verified into the store, images and references committed and the
 * intent gone; a layer whose bytes do not match stores no image; and
 * recovery of a killed pull/load: forward when every record is in, back
 * (the records it created removed, older ones kept) otherwise.
 */
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { readIntents, writeIntent, type ImagesIntent } from '../../src/deploy/intent.ts';
import { Paths } from '../../src/deploy/paths.ts';
import { BerthError } from '../../src/errors.ts';
import { parseImageConfig, parseManifest, type ImageManifest } from '../../src/image/manifest.ts';
import { formatReference, parseImageReference } from '../../src/transport/index.ts';
import type { ResolvedImage } from '../../src/transport/resolve.ts';
import { silentReporter, type OpContext } from '../../src/ops/context.ts';
import { recoverImages, storeImages, type TrustedImage } from '../../src/ops/layer-pipeline.ts';
import { Store } from '../../src/store/store.ts';
import type { BlobDescriptor, ImageSource } from '../../src/transport/types.ts';
import { cleanup, imageOf, sandbox, storeImage, tarOf, type TestImage } from './store-helpers.ts';

after(cleanup);

/** Serves layer blobs by digest; `tamper` flips a byte of every blob it serves. */
function memorySource(blobs: Map<string, Buffer>, tamper = false): ImageSource {
  const reference = parseImageReference('docker://registry.test/mem:1');
  return {
    reference,
    description: formatReference(reference),
    getManifest: () => Promise.reject(new Error('not used')),
    getBlob: async (d: BlobDescriptor) => {
      const data = Buffer.from(blobs.get(d.digest)!);
      if (tamper) data[0]! ^= 1;
      return Readable.from([data]);
    },
    close: async () => undefined,
  };
}

function resolved(image: TestImage): ResolvedImage {
  return {
    manifestDigest: image.manifestDigest,
    manifestBytes: image.manifestBytes,
    manifest: parseManifest(image.manifestBytes, undefined) as ImageManifest,
    configBytes: image.configBytes,
    config: parseImageConfig(image.configBytes),
  };
}

async function setting(): Promise<{ ctx: OpContext; store: Store; root: string }> {
  const box = await sandbox();
  return { ctx: { paths: new Paths(box.root, join(box.base, 'units')), report: silentReporter }, store: await Store.open(box.root), root: box.root };
}

const file = (name: string, data: string) => ({ name, data });

describe('layer pipeline', () => {
  it('stores every layer once (shared ones too), then images and references, and leaves no intent', async () => {
    const { ctx, store, root } = await setting();
    const [l1, l2, l3] = await Promise.all([tarOf([file('a', 'one')]), tarOf([file('b', 'two')]), tarOf([file('c', 'three')])]);
    const blobs = new Map([l1!, l2!, l3!].map((t) => [imageOf([t]).diffIds[0]!, t] as const));
    const x = imageOf([l1!, l2!], 'x');
    const y = imageOf([l2!, l3!], 'y');
    const source = memorySource(blobs);
    const images: TrustedImage[] = [
      { reference: 'docker://registry.test/x:1', source, resolved: resolved(x), signatures: [] },
      { reference: 'docker://registry.test/y:1', source, resolved: resolved(y), signatures: [] },
    ];
    const counts = await storeImages(ctx, store, 'load', images);
    assert.deepEqual(counts.map((c) => c.fetchedLayers), [2, 1]);
    assert.equal(await store.resolveReference('docker://registry.test/x:1'), x.manifestDigest);
    assert.equal(await store.resolveReference('docker://registry.test/y:1'), y.manifestDigest);
    assert.deepEqual(await readIntents(root), []);
  });

  it('a layer that does not match its digest stores no image, no reference and no intent', async () => {
    const { ctx, store, root } = await setting();
    const tar = await tarOf([file('a', 'one')]);
    const image = imageOf([tar]);
    const source = memorySource(new Map([[image.diffIds[0]!, tar]]), true);
    await assert.rejects(storeImages(ctx, store, 'pull', [{ reference: 'docker://registry.test/bad:1', source, resolved: resolved(image), signatures: [] }]), (e: unknown) => e instanceof BerthError && e.code === 'DIGEST_MISMATCH');
    assert.equal(await store.hasLayer(image.diffIds[0]!), false);
    assert.deepEqual(await store.listImages(), []);
    assert.deepEqual(await readIntents(root), []);
  });
});

describe('recovery of a killed pull or load', () => {
  async function killedLoad(present: 'all' | 'some') {
    const { ctx, store, root } = await setting();
    const tars = { old: await tarOf([file('old', 'kept')]), a: await tarOf([file('a', 'new a')]), b: await tarOf([file('b', 'new b')]) };
    const old = await storeImage(store, [tars.old], 'old');
    const a = imageOf([tars.a], 'a');
    const b = imageOf([tars.b], 'b');
    const intent: ImagesIntent = {
      version: 1,
      kind: 'images',
      op: 'load',
      pid: 1,
      started: 'x',
      images: [
        { reference: 'docker://r.test/old:1', manifestDigest: old.manifestDigest, created: false },
        { reference: 'docker://r.test/a:1', manifestDigest: a.manifestDigest, created: true },
        { reference: 'docker://r.test/b:1', manifestDigest: b.manifestDigest, created: true },
      ],
    };
    await writeIntent(root, intent);
    // Killed after the record of `a` (and `old`'s again), or after `b`'s too.
    await storeImage(store, [tars.a], 'a');
    if (present === 'all') await storeImage(store, [tars.b], 'b');
    const action = await recoverImages(ctx, store, intent);
    assert.deepEqual(await readdir(join(root, 'intents')), []);
    return { store, old, a, b, action };
  }

  it('every record in: forward, every reference set', async () => {
    const { store, old, a, b, action } = await killedLoad('all');
    assert.match(action, /load of .* completed/);
    for (const [ref, image] of [['old', old], ['a', a], ['b', b]] as const) assert.equal(await store.resolveReference(`docker://r.test/${ref}:1`), image.manifestDigest);
  });

  it('some records missing: back, the created ones removed, the older one kept, no reference set', async () => {
    const { store, old, a, action } = await killedLoad('some');
    assert.match(action, /load of .* undone: removed 1 new image record/);
    assert.deepEqual((await store.listImages()).map((i) => i.manifestDigest), [old.manifestDigest]);
    assert.equal(await store.getImage(a.manifestDigest), undefined);
    for (const ref of ['old', 'a', 'b']) assert.equal(await store.resolveReference(`docker://r.test/${ref}:1`), undefined);
  });
});
