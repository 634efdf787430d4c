/**
 * oci-archive: and docker-archive: files written by skopeo read back: every
 * blob verifies, every layer decompresses to its diff_id.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { MediaType } from '../../src/image/manifest.ts';
import { parseImageReference } from '../../src/transport/index.ts';
import { openImageSource } from '../../src/transport/index.ts';
import { pullThrough } from '../fixtures/pull-through.ts';
import { buildImage, type BuiltImage } from '../fixtures/oci-image.ts';
import { skopeoCopy } from '../harness/registry.ts';

async function pull(ref: string) {
  const source = await openImageSource(parseImageReference(ref), {});
  try {
    return await pullThrough(source);
  } finally {
    await source.close();
  }
}

describe('archives written by skopeo', () => {
  let dir: string;
  let web: BuiltImage;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'berth-archive-e2e-'));
    const layout = path.join(dir, 'layout');
    web = await buildImage(layout, 'web', { layers: [[{ path: 'www/index.html', content: '<h1>hi</h1>\n' }]], config: { Cmd: ['httpd', '-f'] } });
    await buildImage(layout, 'tool', { busybox: false, layers: [[{ path: 'tool', content: 'x'.repeat(4096), executable: true }]] });
    await Promise.all([
      skopeoCopy(`oci:${layout}:web`, `oci-archive:${dir}/web.oci.tar:web`),
      skopeoCopy(`oci:${layout}:web`, `docker-archive:${dir}/web.docker.tar:example/web:1.0`),
    ]);
  });

  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('reads an oci-archive, by name and as its only image', async () => {
    const byName = await pull(`oci-archive:${dir}/web.oci.tar:web`);
    assert.equal(byName.manifestDigest, web.manifestDigest);
    assert.equal((await pull(`oci-archive:${dir}/web.oci.tar`)).manifestDigest, web.manifestDigest);
    await assert.rejects(pull(`oci-archive:${dir}/web.oci.tar:other`), { code: 'IMAGE_NOT_FOUND' });
  });

  it('reads a docker-archive by RepoTag, by index and as its only image', async () => {
    const image = await pull(`docker-archive:${dir}/web.docker.tar:example/web:1.0`);
    assert.equal(image.manifest.mediaType, MediaType.dockerManifest);
    assert.equal(image.manifest.layers.length, web.layers.length);
    // Same image content: the config (and so the diff_ids) is byte-identical.
    assert.equal(image.manifest.config.digest, web.configDigest);
    assert.deepEqual(image.config.config.Cmd, ['httpd', '-f']);
    for (const ref of [`docker-archive:${dir}/web.docker.tar:docker.io/example/web:1.0`, `docker-archive:${dir}/web.docker.tar:@0`, `docker-archive:${dir}/web.docker.tar`]) {
      assert.equal((await pull(ref)).manifestDigest, image.manifestDigest, ref);
    }
    await assert.rejects(pull(`docker-archive:${dir}/web.docker.tar:example/web:2.0`), (e: { code?: string; message?: string }) => e.code === 'IMAGE_NOT_FOUND' && /example\/web:1\.0/.test(e.message!));
  });

  it('refuses a missing archive clearly', async () => {
    await assert.rejects(pull(`docker-archive:${dir}/none.tar`), { code: 'IMAGE_NOT_FOUND' });
    await assert.rejects(pull(`oci-archive:${dir}/none.tar`), { code: 'IMAGE_NOT_FOUND' });
  });
});
