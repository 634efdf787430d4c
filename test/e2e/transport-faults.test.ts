/**
 * The docker transport under network faults (FaultProxy in front of
 * docker-registry, demanding Basic credentials): dropped blob downloads
 * resume with Range, corruption is caught, 5xx/429 are retried within
 * bounds, stalls time out, and redirects to another host carry no
 * credentials.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { verifiedStream, type Digest } from '../../src/image/digest.ts';
import { parseImageReference } from '../../src/transport/index.ts';
import { openImageSource } from '../../src/transport/index.ts';
import type { SourceOptions } from '../../src/transport/types.ts';
import { pullThrough } from '../fixtures/pull-through.ts';
import { buildImage, type BuiltImage } from '../fixtures/oci-image.ts';
import { FaultProxy } from '../harness/fault-proxy.ts';
import { skopeoCopy, TestRegistry } from '../harness/registry.ts';

const USER = 'puller';
const PASSWORD = 'pw';

describe('docker transport under faults', () => {
  let reg: TestRegistry;
  let proxy: FaultProxy;
  let dir: string;
  let image: BuiltImage;
  let options: SourceOptions;
  let ref: string;
  let blobPath: string;

  before(async () => {
    reg = await TestRegistry.start();
    dir = await mkdtemp(path.join(tmpdir(), 'berth-faults-'));
    const conf = path.join(dir, 'registries.conf');
    await writeFile(conf, '');
    // The busybox layer: about a megabyte, so a download can break off part-way.
    image = await buildImage(path.join(dir, 'layout'), 'bb', { layers: [[{ path: 'etc/motd', content: 'hi\n' }]] });
    await skopeoCopy(`oci:${image.layout}:bb`, `docker://${reg.host}/faults/bb:1`, ['--dest-tls-verify=false']);
    proxy = await FaultProxy.start(reg.host, { basicAuth: { user: USER, password: PASSWORD } });
    ref = `docker://${proxy.host}/faults/bb:1`;
    blobPath = `/v2/faults/bb/blobs/${image.layers[0]!.digest}`;
    options = { tlsVerify: false, registriesConf: conf, creds: `${USER}:${PASSWORD}`, retry: { baseDelayMs: 20 }, idleTimeoutMs: 400 };
  });

  afterEach(() => proxy.reset());

  after(async () => {
    await proxy?.stop();
    await reg?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function pull(extra: SourceOptions = {}) {
    const source = await openImageSource(parseImageReference(ref), { ...options, ...extra });
    try {
      return await pullThrough(source);
    } finally {
      await source.close();
    }
  }

  const blobRequests = () => proxy.requests.filter((r) => r.path === blobPath);

  it('pulls cleanly through the proxy', async () => {
    assert.ok(image.layers[0]!.size > 300_000, `busybox layer is ${image.layers[0]!.size} bytes`);
    assert.equal((await pull()).manifestDigest, image.manifestDigest);
    assert.equal(blobRequests().length, 1);
  });

  it('resumes a dropped blob download with Range', async () => {
    proxy.inject(blobPath, { kind: 'truncate', afterBytes: 200_000 });
    await pull();
    const reqs = blobRequests();
    assert.equal(reqs.length, 2);
    assert.equal(reqs[0]!.headers.range, undefined);
    const from = Number(/^bytes=(\d+)-$/.exec(String(reqs[1]!.headers.range))?.[1]);
    assert.ok(from > 0 && from <= 200_000, `resumed from ${reqs[1]!.headers.range}`);
    assert.deepEqual(reqs.map((r) => r.status), [200, 206]);
  });

  it('restarts from the beginning when a server ignores Range', async () => {
    proxy.inject(blobPath, { kind: 'truncate', afterBytes: 200_000 });
    proxy.inject(blobPath, { kind: 'ignore-range' });
    await pull();
    const reqs = blobRequests();
    assert.deepEqual(reqs.map((r) => [r.fault, r.status]), [['truncate', 200], ['ignore-range', 200]]);
    assert.match(String(reqs[1]!.headers.range), /^bytes=\d+-$/);
  });

  it('resumes several times, then gives up with a clear error', async () => {
    proxy.inject(blobPath, { kind: 'truncate', afterBytes: 50_000 }, 2);
    await pull();
    assert.equal(blobRequests().length, 3);
    proxy.reset();
    proxy.inject(blobPath, { kind: 'truncate', afterBytes: 10_000 }, 10);
    await assert.rejects(pull({ resumeAttempts: 2 }), (e: { code?: string; message?: string }) => {
      assert.equal(e.code, 'REGISTRY_UNREACHABLE');
      assert.match(e.message!, /broke off after \d+ of \d+ bytes \(continued 2 time\(s\)\)/);
      return true;
    });
    assert.equal(blobRequests().length, 3);
  });

  it('catches a corrupted byte with DIGEST_MISMATCH', async () => {
    proxy.inject(blobPath, { kind: 'corrupt' });
    await assert.rejects(pull(), { code: 'DIGEST_MISMATCH' });
  });

  it('retries 500 answers and succeeds', async () => {
    proxy.inject(blobPath, { kind: 'status', status: 500 }, 2);
    proxy.inject('/manifests/', { kind: 'status', status: 503 }, 1);
    await pull();
    assert.deepEqual(blobRequests().map((r) => r.fault), ['status', 'status', undefined]);
  });

  it('honours Retry-After on 429', async () => {
    proxy.inject(blobPath, { kind: 'status', status: 429, headers: { 'retry-after': '0' } }, 2);
    const started = Date.now();
    // A long backoff that Retry-After: 0 must override.
    await pull({ retry: { baseDelayMs: 5_000 } });
    assert.ok(Date.now() - started < 4_000, `took ${Date.now() - started} ms`);
    assert.equal(blobRequests().length, 3);
  });

  it('gives up after a bounded number of tries', async () => {
    proxy.inject(blobPath, { kind: 'status', status: 502 }, 100);
    await assert.rejects(pull({ retry: { attempts: 3, baseDelayMs: 10 } }), (e: { code?: string; message?: string }) => e.code === 'REGISTRY_ERROR' && /502/.test(e.message!));
    assert.equal(blobRequests().length, 3);
  });

  it('times out a stalled download, resuming once and then failing', async () => {
    proxy.inject(blobPath, { kind: 'stall', afterBytes: 100_000 }, 1);
    await pull();
    assert.equal(blobRequests().length, 2);
    proxy.reset();
    proxy.inject(blobPath, { kind: 'stall', afterBytes: 100_000 }, 10);
    const started = Date.now();
    await assert.rejects(pull({ resumeAttempts: 1 }), (e: { code?: string; message?: string }) => {
      assert.equal(e.code, 'REGISTRY_UNREACHABLE');
      assert.match(e.message!, /no data for 0\.4s/);
      return true;
    });
    assert.ok(Date.now() - started < 5_000);
  });

  it('fetches a layer the registry lacks from its descriptor URLs, without credentials', async () => {
    const layer = image.layers[0]!;
    const descriptor = { mediaType: layer.mediaType, digest: layer.digest as Digest, size: layer.size };
    proxy.inject(blobPath, { kind: 'status', status: 404, body: '{"errors":[{"code":"BLOB_UNKNOWN"}]}' }, 2);
    const source = await openImageSource(parseImageReference(ref), options);
    try {
      const urls = ['ftp://ignored.example/x', `${proxy.redirectOrigin}${blobPath}`];
      const data = verifiedStream(await source.getBlob({ ...descriptor, urls }), descriptor.digest, descriptor.size, 'foreign layer');
      for await (const _ of data) void _;
      await assert.rejects(source.getBlob(descriptor), { code: 'IMAGE_NOT_FOUND' });
    } finally {
      await source.close();
    }
    const reqs = blobRequests();
    assert.deepEqual(reqs.map((r) => [r.listener, r.status]), [['main', 404], ['redirect', 200], ['main', 404]]);
    assert.equal(reqs[1]!.headers.authorization, undefined);
  });

  it('does not send credentials along a redirect to another host', async () => {
    proxy.inject(blobPath, { kind: 'redirect' });
    await pull();
    const reqs = blobRequests();
    assert.deepEqual(reqs.map((r) => r.listener), ['main', 'redirect']);
    assert.match(String(reqs[0]!.headers.authorization), /^Basic /);
    assert.equal(reqs[1]!.headers.authorization, undefined);
    assert.match(String(reqs[1]!.headers.host), /^127\.0\.0\.2:/);
  });
});
