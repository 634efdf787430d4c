/**
 * transport/docker/sigstore_fetch.ts against a scripted registry (pure logic:
 * what it asks for, what it refuses). The real registry is in
 * test/e2e/trust-sigstore.test.ts; this covers what Debian's registry cannot
 * show: the referrers API answering, and hostile answers.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import { BerthError } from '../../src/errors.ts';
import type { Digest } from '../../src/image/digest.ts';
import { ANNOTATION_SIGNATURE, COSIGN_SIMPLESIGNING_MEDIA_TYPE, SIGSTORE_BUNDLE_V03_MEDIA_TYPE } from '../../src/image/sigstore.ts';
import { fetchSigstoreSignatures, MAX_PAYLOAD_BYTES, type RegistryReader } from '../../src/transport/docker/sigstore_fetch.ts';

const sha = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const IMAGE = sha('image') as Digest;
const HEX = IMAGE.slice(7);
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';

type Answer = { status: number; body?: Buffer | string; type?: string };

/** A registry that answers paths from a table (anything else 404) and records what was asked. */
function registry(table: Record<string, Answer>): RegistryReader & { asked: string[] } {
  const asked: string[] = [];
  return {
    repository: 'ns/app',
    description: 'registry.test/ns/app',
    minRate: null,
    asked,
    async get(path) {
      asked.push(path);
      const a = table[path] ?? { status: 404 };
      const body = Buffer.from(a.body ?? '');
      const res = Readable.from(body.length === 0 ? [] : [body]) as unknown as IncomingMessage;
      Object.assign(res, { statusCode: a.status, headers: { 'content-length': String(body.length), ...(a.type === undefined ? {} : { 'content-type': a.type }) } });
      return res;
    },
    async expectOk(res, what) {
      if (res.statusCode !== 200) throw new BerthError('REGISTRY_ERROR', `${what}: answered ${res.statusCode}`);
    },
  };
}

const json = (v: unknown) => Buffer.from(JSON.stringify(v));
const config = { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha('{}'), size: 2 };

function sigManifest(layers: { payload: Buffer; annotations?: Record<string, string>; size?: number; digest?: string }[]) {
  return json({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config,
    layers: layers.map((l) => ({ mediaType: COSIGN_SIMPLESIGNING_MEDIA_TYPE, digest: l.digest ?? sha(l.payload), size: l.size ?? l.payload.length, annotations: l.annotations ?? { [ANNOTATION_SIGNATURE]: 'c2ln' } })),
  });
}

const sigPath = `/v2/ns/app/manifests/sha256-${HEX}.sig`;
const referrersPath = `/v2/ns/app/referrers/${IMAGE}?artifactType=${encodeURIComponent(SIGSTORE_BUNDLE_V03_MEDIA_TYPE)}`;
const blob = (b: Buffer | string) => `/v2/ns/app/blobs/${sha(b)}`;

const rejectsWith = (p: Promise<unknown>, re: RegExp) => assert.rejects(p, (e: unknown) => e instanceof BerthError && re.test(e.message));

describe('sigstore_fetch', () => {
  it('none: the .sig tag and the referrers tag are missing', async () => {
    const r = registry({});
    assert.deepEqual(await fetchSigstoreSignatures(r, IMAGE), []);
    assert.deepEqual(r.asked, [sigPath, referrersPath, `/v2/ns/app/manifests/sha256-${HEX}`]);
  });

  it('reads each attachment with its annotations; the payload digest-verified', async () => {
    const payload = Buffer.from('{"critical":{}}');
    const r = registry({
      [sigPath]: { status: 200, body: sigManifest([{ payload, annotations: { [ANNOTATION_SIGNATURE]: 'c2ln', 'dev.sigstore.cosign/certificate': 'CERT', 'dev.sigstore.cosign/bundle': 'SET' } }]), type: OCI_MANIFEST },
      [blob(payload)]: { status: 200, body: payload },
    });
    assert.deepEqual(await fetchSigstoreSignatures(r, IMAGE), [{ kind: 'cosign', payload, signature: 'c2ln', certificate: 'CERT', rekorBundle: 'SET' }]);
  });

  it('refuses a payload that is not what the manifest says, one over the cap (without asking for it), and a layer without a signature', async () => {
    const payload = Buffer.from('{"critical":{}}');
    await rejectsWith(fetchSigstoreSignatures(registry({ [sigPath]: { status: 200, body: sigManifest([{ payload }]), type: OCI_MANIFEST }, [blob(payload)]: { status: 200, body: '{"critical":{"x":1}}' } }), IMAGE), /larger than its declared size|has digest/);
    const big = registry({ [sigPath]: { status: 200, body: sigManifest([{ payload, size: MAX_PAYLOAD_BYTES + 1 }]), type: OCI_MANIFEST } });
    await rejectsWith(fetchSigstoreSignatures(big, IMAGE), /is 65537 bytes, the limit is 65536/);
    assert.ok(!big.asked.some((p) => p.includes('/blobs/')), 'the oversized blob was not requested');
    await rejectsWith(fetchSigstoreSignatures(registry({ [sigPath]: { status: 200, body: sigManifest([{ payload, annotations: {} }]), type: OCI_MANIFEST } }), IMAGE), /has no dev.cosignproject.cosign\/signature annotation/);
    const many = Array.from({ length: 33 }, (_, i) => ({ payload: Buffer.from(`p${i}`) }));
    await rejectsWith(fetchSigstoreSignatures(registry({ [sigPath]: { status: 200, body: sigManifest(many), type: OCI_MANIFEST } }), IMAGE), /holds 33 signatures, the limit is 32/);
    await rejectsWith(fetchSigstoreSignatures(registry({ [sigPath]: { status: 500 } }), IMAGE), /answered 500/);
  });

  it('bundles from the referrers API when it answers (only the bundle artifact type, subject checked)', async () => {
    const bundle = Buffer.from('{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}');
    const empty = { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha('{}'), size: 2 };
    const referrer = json({ schemaVersion: 2, mediaType: OCI_MANIFEST, artifactType: SIGSTORE_BUNDLE_V03_MEDIA_TYPE, config: empty, layers: [{ mediaType: SIGSTORE_BUNDLE_V03_MEDIA_TYPE, digest: sha(bundle), size: bundle.length }], subject: { mediaType: OCI_MANIFEST, digest: IMAGE, size: 100 } });
    const elsewhere = json({ schemaVersion: 2, mediaType: OCI_MANIFEST, artifactType: SIGSTORE_BUNDLE_V03_MEDIA_TYPE, config: empty, layers: [{ mediaType: SIGSTORE_BUNDLE_V03_MEDIA_TYPE, digest: sha(bundle), size: bundle.length }], subject: { mediaType: OCI_MANIFEST, digest: sha('other'), size: 100 } });
    const index = (ms: Buffer[]) => json({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [...ms.map((m) => ({ mediaType: OCI_MANIFEST, digest: sha(m), size: m.length, artifactType: SIGSTORE_BUNDLE_V03_MEDIA_TYPE })), { mediaType: OCI_MANIFEST, digest: sha('sbom'), size: 5, artifactType: 'application/spdx+json' }] });
    const table = (ms: Buffer[]): Record<string, Answer> => ({
      [referrersPath]: { status: 200, body: index(ms), type: OCI_INDEX },
      ...Object.fromEntries(ms.map((m) => [`/v2/ns/app/manifests/${sha(m)}`, { status: 200, body: m, type: OCI_MANIFEST }])),
      [blob(bundle)]: { status: 200, body: bundle },
    });
    const r = registry(table([referrer]));
    assert.deepEqual(await fetchSigstoreSignatures(r, IMAGE), [{ kind: 'bundle', mediaType: SIGSTORE_BUNDLE_V03_MEDIA_TYPE, bytes: bundle }]);
    assert.ok(!r.asked.includes(`/v2/ns/app/manifests/sha256-${HEX}`), 'no fallback when the API answers');
    assert.ok(!r.asked.includes(`/v2/ns/app/manifests/${sha('sbom')}`), 'other artifact types are not fetched');
    await rejectsWith(fetchSigstoreSignatures(registry(table([elsewhere])), IMAGE), /its subject is sha256:[0-9a-f]{64}, not sha256:/);
    // a registry serving other bytes for a listed referrer
    const swapped = table([referrer]);
    swapped[`/v2/ns/app/manifests/${sha(referrer)}`] = { status: 200, body: elsewhere, type: OCI_MANIFEST };
    await rejectsWith(fetchSigstoreSignatures(registry(swapped), IMAGE), /has digest sha256:/);
  });
});
