// checkTrust end to end on files: policy.json, registries.d, a file:// or http:// look-aside
// store, and OpenPGP signatures (keys made with openpgp here; gpg and skopeo interop is in
// test/e2e/trust-interop.test.ts). Every way to be rejected is its own test.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as openpgp from 'openpgp';
import { isBerthError, type ErrorCode } from '../../src/errors.ts';
import { digestOf, encodedOf, type Digest } from '../../src/image/digest.ts';
import { parseImageReference } from '../../src/transport/index.ts';
import { checkTrust } from '../../src/trust/index.ts';
import type { TrustOptions } from '../../src/trust/options.ts';
import { buildPayload } from '../../src/trust/payload.ts';
import { signPayload } from '../../src/trust/sign.ts';
import { unusedPort } from '../harness/registry.ts';

interface TestKey {
  privateKey: openpgp.PrivateKey;
  fingerprint: string;
  file: string;
}

const HOST = '127.0.0.1:5000';
const IMAGE = `docker://${HOST}/demo/web:1.0`;
const manifestA = Buffer.from('{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":["a"]}');
const manifestB = Buffer.from('{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":["b"]}');

describe('checkTrust', () => {
  let work: string;
  let trusted: TestKey;
  let other: TestKey;
  let server: http.Server;
  let serverUrl: string;
  const served = new Map<string, { status: number; body?: Buffer }>();
  let n = 0;

  const newKey = async (name: string): Promise<TestKey> => {
    const { privateKey, publicKey } = await openpgp.generateKey({ type: 'ecc', curve: 'ed25519Legacy', userIDs: [{ name, email: `${name}@example.com` }], format: 'object' });
    const file = path.join(work, `${name}.gpg`);
    await writeFile(file, publicKey.write() as Uint8Array);
    return { privateKey, fingerprint: privateKey.getFingerprint().toUpperCase(), file };
  };

  /** A fresh case directory with a policy (unless null), a registries.d and a lookaside store. */
  const setup = async (policy: unknown, lookaside?: string) => {
    const dir = path.join(work, `case-${++n}`);
    const store = path.join(dir, 'sigstore');
    const registriesDir = path.join(dir, 'registries.d');
    await mkdir(registriesDir, { recursive: true });
    await writeFile(path.join(registriesDir, 'test.yaml'), `docker:\n  ${HOST}:\n    lookaside: ${lookaside ?? `file://${store}`}\n`);
    const policyPath = path.join(dir, 'policy.json');
    if (policy !== null) await writeFile(policyPath, typeof policy === 'string' ? policy : JSON.stringify(policy));
    const options: TrustOptions = { policyPath, registriesDir };
    /** Puts signatures (in order) where the look-aside layout expects those of `manifest`. */
    const put = async (signatures: Buffer[], manifest = manifestA) => {
      const sigDir = path.join(store, `demo/web@sha256=${encodedOf(digestOf(manifest))}`);
      await mkdir(sigDir, { recursive: true });
      for (const [i, s] of signatures.entries()) await writeFile(path.join(sigDir, `signature-${i + 1}`), s);
    };
    return { options, put, store };
  };

  const signedByTrusted = () => ({ default: [{ type: 'reject' }], transports: { docker: { [`${HOST}/demo`]: [{ type: 'signedBy', keyType: 'GPGKeys', keyPath: trusted.file }] } } });

  const signature = (key: TestKey, opts: { identity?: string; manifest?: Buffer; digest?: Digest } = {}) =>
    signPayload(
      buildPayload({
        manifestDigest: opts.digest ?? digestOf(opts.manifest ?? manifestA),
        dockerReference: opts.identity ?? `${HOST}/demo/web:1.0`,
        creator: 'test',
        timestamp: 1700000000,
      }),
      key.privateKey,
    );

  const rejected = async (p: Promise<unknown>, code: ErrorCode, ...patterns: RegExp[]) => {
    await assert.rejects(p, (e: unknown) => {
      assert.ok(isBerthError(e), `a BerthError, got ${String(e)}`);
      assert.equal(e.code, code, e.message);
      assert.equal(e.exitCode, 8);
      const text = [e.message, ...e.details].join('\n');
      for (const re of patterns) assert.match(text, re);
      return true;
    });
  };

  before(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'berth-trust-'));
    [trusted, other] = await Promise.all([newKey('trusted'), newKey('other')]);
    server = http.createServer((req, res) => {
      const r = served.get(req.url ?? '');
      res.statusCode = r?.status ?? 404;
      res.end(r?.body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    serverUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(async () => {
    await new Promise((resolve) => server?.close(resolve));
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('accepts an image signed by a trusted key, and returns its signatures and the key', async () => {
    const { options, put } = await setup(signedByTrusted());
    const sig = await signature(trusted);
    await put([sig]);
    const v = await checkTrust(parseImageReference(IMAGE), manifestA, options);
    assert.equal(v.accepted, true);
    assert.equal(v.verifiedBy, trusted.fingerprint);
    assert.deepEqual(v.signatures, [sig]);
    assert.match(v.requirement, /docker scope "127.0.0.1:5000\/demo" in .*policy.json: signedBy/);
  });

  it('accepts two signatures of which only the second is by an accepted key', async () => {
    const { options, put } = await setup(signedByTrusted());
    await put([await signature(other), await signature(trusted)]);
    const v = await checkTrust(parseImageReference(IMAGE), manifestA, options);
    assert.equal(v.verifiedBy, trusted.fingerprint);
    assert.equal(v.signatures.length, 2);
  });

  it('accepts an uncompressed signed message too', async () => {
    const { options, put } = await setup(signedByTrusted());
    const message = await openpgp.createMessage({ binary: buildPayload({ manifestDigest: digestOf(manifestA), dockerReference: `${HOST}/demo/web:1.0`, creator: 'x', timestamp: 1 }) });
    await put([Buffer.from(await openpgp.sign({ message, signingKeys: trusted.privateKey, format: 'binary' }))]);
    assert.equal((await checkTrust(parseImageReference(IMAGE), manifestA, options)).verifiedBy, trusted.fingerprint);
  });

  it('requires every signedBy requirement of the scope', async () => {
    const { options, put } = await setup({
      default: [{ type: 'signedBy', keyType: 'GPGKeys', keyPath: trusted.file }, { type: 'signedBy', keyType: 'GPGKeys', keyPath: other.file }],
    });
    await put([await signature(trusted)]);
    await rejected(checkTrust(parseImageReference(IMAGE), manifestA, options), 'UNTRUSTED', /other\.gpg/, /signature-1: signed by key [0-9A-F]{16}, which this requirement does not trust/);
    await put([await signature(trusted), await signature(other)]);
    assert.equal((await checkTrust(parseImageReference(IMAGE), manifestA, options)).verifiedBy, trusted.fingerprint);
  });

  it('uses the signatures the caller gives instead of the store', async () => {
    const { options } = await setup(signedByTrusted(), 'http://127.0.0.1:1/never-asked');
    const v = await checkTrust(parseImageReference(IMAGE), manifestA, options, [await signature(trusted)]);
    assert.equal(v.verifiedBy, trusted.fingerprint);
    await rejected(checkTrust(parseImageReference(IMAGE), manifestA, options, []), 'UNTRUSTED', /has no signatures/);
  });

  it('rejects an unsigned image', async () => {
    const { options } = await setup(signedByTrusted());
    await rejected(checkTrust(parseImageReference(IMAGE), manifestA, options), 'UNTRUSTED', /docker:\/\/127.0.0.1:5000\/demo\/web:1.0 is rejected/, /signedBy/, /has no signatures/, /looked in file:\/\//);
  });

  it('rejects a signature by a key the policy does not accept', async () => {
    const { options, put } = await setup(signedByTrusted());
    await put([await signature(other)]);
    await rejected(checkTrust(parseImageReference(IMAGE), manifestA, options), 'UNTRUSTED', /none of its 1 signature is acceptable/, new RegExp(`signature-1: signed by key ${other.fingerprint.slice(-16)}, which this requirement does not trust`));
  });

  it('rejects a tampered signature (one byte flipped anywhere)', async () => {
    const { options, put } = await setup(signedByTrusted());
    const good = await signature(trusted);
    // Every position: header, compressed payload, signature MPIs.
    for (let i = 0; i < good.length; i += Math.max(1, Math.floor(good.length / 40))) {
      const bad = Buffer.from(good);
      bad[i] = bad[i]! ^ 0x01;
      await put([bad]);
      await rejected(checkTrust(parseImageReference(IMAGE), manifestA, options), 'UNTRUSTED', /signature-1: /);
    }
  });

  it('rejects a signature for another identity', async () => {
    const { options, put } = await setup(signedByTrusted());
    await put([await signature(trusted, { identity: `${HOST}/demo/web:2.0` })]);
    await rejected(checkTrust(parseImageReference(IMAGE), manifestA, options), 'UNTRUSTED', /claims identity 127.0.0.1:5000\/demo\/web:2.0, expected 127.0.0.1:5000\/demo\/web:1.0/);
  });

  it('rejects a valid signature moved to a different image (manifest digest mismatch)', async () => {
    const { options, put } = await setup(signedByTrusted());
    await put([await signature(trusted, { manifest: manifestA })], manifestB);
    await rejected(checkTrust(parseImageReference(IMAGE), manifestB, options), 'UNTRUSTED', new RegExp(`for manifest ${digestOf(manifestA)}, but this image's manifest is ${digestOf(manifestB)}`));
  });

  it('rejects an oversized signature and a garbage one', async () => {
    const { options, put } = await setup(signedByTrusted());
    await put([Buffer.alloc(4 * 1024 * 1024 + 1, 0xa3)]);
    await rejected(checkTrust(parseImageReference(IMAGE), manifestA, options), 'UNTRUSTED', /signature-1: larger than 4194304 bytes/);
    await put([Buffer.from('this is not a signature\n'.repeat(10))]);
    await rejected(checkTrust(parseImageReference(IMAGE), manifestA, options), 'UNTRUSTED', /signature-1: not an OpenPGP signed message/);
  });

  it('rejects a payload with unknown critical members even when validly signed', async () => {
    const { options, put } = await setup(signedByTrusted());
    const payload = JSON.parse(buildPayload({ manifestDigest: digestOf(manifestA), dockerReference: `${HOST}/demo/web:1.0`, creator: 'x', timestamp: 1 }).toString());
    payload.critical.restrictions = { until: 0 };
    await put([await signPayload(Buffer.from(JSON.stringify(payload)), trusted.privateKey)]);
    await rejected(checkTrust(parseImageReference(IMAGE), manifestA, options), 'UNTRUSTED', /critical: unknown member "restrictions"/);
  });

  it('fails closed when an http look-aside store is down or failing', async () => {
    const down = await setup(signedByTrusted(), `http://127.0.0.1:${await unusedPort()}/sigs`);
    await rejected(checkTrust(parseImageReference(IMAGE), manifestA, down.options), 'UNTRUSTED', /signatures cannot be read from http:\/\/127.0.0.1:\d+\/sigs/, /ECONNREFUSED/);
    const failing = await setup(signedByTrusted(), `${serverUrl}/failing`);
    served.set(`/failing/demo/web@sha256=${encodedOf(digestOf(manifestA))}/signature-1`, { status: 503 });
    await rejected(checkTrust(parseImageReference(IMAGE), manifestA, failing.options), 'UNTRUSTED', /answered HTTP 503/);
  });

  it('reads signatures over http until the first 404', async () => {
    const { options } = await setup(signedByTrusted(), `${serverUrl}/ok/`);
    const base = `/ok/demo/web@sha256=${encodedOf(digestOf(manifestA))}`;
    served.set(`${base}/signature-1`, { status: 200, body: await signature(other) });
    served.set(`${base}/signature-2`, { status: 200, body: await signature(trusted) });
    const v = await checkTrust(parseImageReference(IMAGE), manifestA, options);
    assert.equal(v.signatures.length, 2);
    assert.equal(v.verifiedBy, trusted.fingerprint);
    const { options: unsigned } = await setup(signedByTrusted(), `${serverUrl}/empty`);
    await rejected(checkTrust(parseImageReference(IMAGE), manifestA, unsigned), 'UNTRUSTED', /has no signatures/);
  });

  it('rejects what a reject scope names, without reading signatures', async () => {
    const { options } = await setup(
      { default: [{ type: 'insecureAcceptAnything' }], transports: { docker: { [`${HOST}/demo/web`]: [{ type: 'reject' }] } } },
      `http://127.0.0.1:${await unusedPort()}/would-fail`,
    );
    await rejected(checkTrust(parseImageReference(IMAGE), manifestA, options), 'UNTRUSTED', /docker scope "127.0.0.1:5000\/demo\/web" in .* says reject/);
    assert.equal((await checkTrust(parseImageReference(`docker://${HOST}/demo/other:1`), manifestA, options)).requirement.endsWith('insecureAcceptAnything'), true);
  });

  it('rejects under a requirement type berth does not support, saying so', async () => {
    const { options } = await setup({ default: [{ type: 'signedBaseLayer', baseLayerIdentity: { type: 'matchExact' } }] });
    await rejected(checkTrust(parseImageReference(IMAGE), manifestA, options), 'UNTRUSTED', /the default policy in .*: requirement type "signedBaseLayer" is not supported by berth/);
  });

  it('rejects everything under a policy that does not parse, naming the file and the reason', async () => {
    const { options } = await setup('{"default": [{"type": "insecureAcceptAnything"}], }');
    await rejected(checkTrust(parseImageReference(IMAGE), manifestA, options), 'POLICY_INVALID', new RegExp(`trust policy ${options.policyPath} is invalid \\(JSON: expected a member name`), /rejecting every image/);
  });

  it('refuses without a policy file, saying how to make one; insecurePolicy overrides', async () => {
    const { options } = await setup(null);
    await assert.rejects(checkTrust(parseImageReference(IMAGE), manifestA, options), (e: unknown) => {
      assert.ok(isBerthError(e) && e.code === 'NO_POLICY' && e.exitCode === 8);
      assert.match(e.message, /policy.json does not exist/);
      assert.match(e.hint ?? '', /berth trust default reject/);
      return true;
    });
    const v = await checkTrust(parseImageReference(IMAGE), manifestA, { ...options, insecurePolicy: true });
    assert.equal(v.accepted, true);
  });

  it('checks a digest reference against the manifest bytes', async () => {
    const { options } = await setup({ default: [{ type: 'insecureAcceptAnything' }] });
    await checkTrust(parseImageReference(`docker://${HOST}/demo/web@${digestOf(manifestA)}`), manifestA, options);
    await assert.rejects(checkTrust(parseImageReference(`docker://${HOST}/demo/web@${digestOf(manifestA)}`), manifestB, options), (e: unknown) => isBerthError(e) && e.code === 'DIGEST_MISMATCH');
  });

  it('accepts a digest pull signed for a tag of the same repository (matchRepoDigestOrExact)', async () => {
    const { options, put } = await setup(signedByTrusted());
    await put([await signature(trusted, { identity: `${HOST}/demo/web:1.0` })]);
    const v = await checkTrust(parseImageReference(`docker://${HOST}/demo/web@${digestOf(manifestA)}`), manifestA, options);
    assert.equal(v.verifiedBy, trusted.fingerprint);
  });

  it('rejects a signature by an expired key', async () => {
    const { options, put } = await setup({ default: [{ type: 'signedBy', keyType: 'GPGKeys', keyPath: path.join(work, 'expired.gpg') }] });
    const created = new Date(Date.now() - 3600_000);
    const { privateKey, publicKey } = await openpgp.generateKey({ type: 'ecc', curve: 'ed25519Legacy', userIDs: [{ name: 'expired', email: 'expired@example.com' }], date: created, keyExpirationTime: 60, format: 'object' });
    await writeFile(path.join(work, 'expired.gpg'), publicKey.write() as Uint8Array);
    const message = await openpgp.createMessage({ binary: buildPayload({ manifestDigest: digestOf(manifestA), dockerReference: `${HOST}/demo/web:1.0`, creator: 'x', timestamp: 1 }) });
    await put([Buffer.from(await openpgp.sign({ message, signingKeys: privateKey, date: new Date(created.getTime() + 1000), format: 'binary' }))]);
    await rejected(checkTrust(parseImageReference(IMAGE), manifestA, options), 'UNTRUSTED', /signature-1: invalid OpenPGP signature \(.*expired/i);
  });

  it('rejects a signature made before its key was revoked', async () => {
    const { options, put } = await setup({ default: [{ type: 'signedBy', keyType: 'GPGKeys', keyPath: path.join(work, 'revoked.gpg') }] });
    const compromised = await newKey('compromised');
    await put([await signature(compromised)]);
    const { publicKey } = await openpgp.revokeKey({ key: compromised.privateKey, reasonForRevocation: { flag: openpgp.enums.reasonForRevocation.keyCompromised }, format: 'object' });
    await writeFile(path.join(work, 'revoked.gpg'), publicKey.write() as Uint8Array);
    await rejected(checkTrust(parseImageReference(IMAGE), manifestA, options), 'UNTRUSTED', /signature-1: invalid OpenPGP signature \(.*revoked/i);
  });

  it('rejects when the key file is missing', async () => {
    const { options, put } = await setup({ default: [{ type: 'signedBy', keyType: 'GPGKeys', keyPath: path.join(work, 'missing.gpg') }] });
    await put([await signature(trusted)]);
    await rejected(checkTrust(parseImageReference(IMAGE), manifestA, options), 'UNTRUSTED', /cannot read key file .*missing.gpg/);
  });

  it('oci: layouts have no store: signedBy needs signatures from the caller and an exact identity', async () => {
    const ociDir = path.join(work, 'layout');
    const { options } = await setup({
      default: [{ type: 'reject' }],
      transports: { oci: { [ociDir]: [{ type: 'signedBy', keyType: 'GPGKeys', keyPath: trusted.file, signedIdentity: { type: 'exactReference', dockerReference: `${HOST}/demo/web:1.0` } }] } },
    });
    const ref = parseImageReference(`oci:${ociDir}:web`);
    await rejected(checkTrust(ref, manifestA, options), 'UNTRUSTED', /has no signatures/, /oci: transport has no signature store/);
    assert.equal((await checkTrust(ref, manifestA, options, [await signature(trusted)])).verifiedBy, trusted.fingerprint);
  });
});
