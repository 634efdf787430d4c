// policy.json sigstoreSigned as containers-policy.json(5) defines it: every field, strictly,
// with the member path in each error; and the strict decoders the checks rely on.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isBerthError } from '../../src/errors.ts';
import { parsePolicy, type Requirement } from '../../src/trust/policy.ts';
import { canonicalJson, decodeBase64, parsePem } from '../../src/trust/sigstore/encoding.ts';
import { parseCosignPayload } from '../../src/trust/sigstore/payload.ts';

const req = (r: object): Requirement => parsePolicy(Buffer.from(JSON.stringify({ default: [{ type: 'sigstoreSigned', ...r }] })), '/p.json').default[0] as Requirement;
const invalid = (r: object, pattern: RegExp) =>
  assert.throws(
    () => req(r),
    (e: unknown) => isBerthError(e) && e.code === 'POLICY_INVALID' && pattern.test(e.message),
  );
const b64 = (s: string) => Buffer.from(s).toString('base64');
const FULCIO = { caPath: '/ca.pem', oidcIssuer: 'https://issuer', subjectEmail: 'a@b' };

describe('sigstoreSigned in policy.json', () => {
  it('parses every key source, fulcio, pki and Rekor keys', () => {
    assert.deepEqual(req({ keyPath: '/k.pub' }), { type: 'sigstoreSigned', keys: { paths: ['/k.pub'] }, fulcio: undefined, pki: undefined, rekorKeys: undefined, signedIdentity: { type: 'matchRepoDigestOrExact' } });
    assert.deepEqual((req({ keyPaths: ['/a', '/b'] }) as { keys: unknown }).keys, { paths: ['/a', '/b'] });
    assert.deepEqual((req({ keyData: b64('x') }) as { keys: unknown }).keys, { datas: [Buffer.from('x')] });
    assert.deepEqual((req({ keyDatas: [b64('x'), b64('yz')] }) as { keys: unknown }).keys, { datas: [Buffer.from('x'), Buffer.from('yz')] });
    const f = req({ fulcio: FULCIO, rekorPublicKeyPaths: ['/r1', '/r2'], signedIdentity: { type: 'matchRepository' } });
    assert.deepEqual(f, { type: 'sigstoreSigned', keys: undefined, fulcio: { ca: { paths: ['/ca.pem'] }, oidcIssuer: 'https://issuer', subjectEmail: 'a@b' }, pki: undefined, rekorKeys: { paths: ['/r1', '/r2'] }, signedIdentity: { type: 'matchRepository' } });
    assert.deepEqual((req({ fulcio: { ...FULCIO, caPath: undefined, caData: b64('ca') }, rekorPublicKeyData: b64('r') }) as { fulcio: { ca: unknown } }).fulcio.ca, { datas: [Buffer.from('ca')] });
    assert.deepEqual((req({ keyPath: '/k', rekorPublicKeyDatas: [b64('r')] }) as { rekorKeys: unknown }).rekorKeys, { datas: [Buffer.from('r')] });
    assert.deepEqual((req({ pki: { caRootsData: b64('r'), caIntermediatesPath: '/i', subjectHostname: 'h.example' } }) as { pki: unknown }).pki, {
      caRoots: { datas: [Buffer.from('r')] },
      caIntermediates: { paths: ['/i'] },
      subjectEmail: undefined,
      subjectHostname: 'h.example',
    });
  });

  it('refuses what containers/image refuses, naming the member', () => {
    invalid({}, /default\[0\]: exactly one of keyPath, keyPaths, keyData, keyDatas, fulcio and pki must be present/);
    invalid({ keyPath: '/a', keyData: b64('x') }, /exactly one of .* \(found keyPath and keyData\)/);
    invalid({ keyPath: '/a', fulcio: FULCIO }, /found keyPath and fulcio/);
    invalid({ keyPath: 'rel.pub' }, /default\[0\].keyPath: "rel.pub" must be an absolute path/);
    invalid({ keyPaths: [] }, /keyPaths: must be a non-empty array/);
    invalid({ keyData: 'eHl6\n' }, /keyData: must be base64/);
    invalid({ keyData: 'eHl=' }, /keyData: is not canonical base64/);
    invalid({ keyPath: '/a', keyType: 'GPGKeys' }, /unknown member "keyType"/);
    invalid({ fulcio: FULCIO }, /fulcio needs one of rekorPublicKeyPath/);
    invalid({ fulcio: { ...FULCIO, subjectURI: 'x' }, rekorPublicKeyPath: '/r' }, /default\[0\].fulcio: unknown member "subjectURI"/);
    invalid({ fulcio: { oidcIssuer: 'i', subjectEmail: 'e' }, rekorPublicKeyPath: '/r' }, /fulcio: exactly one of caPath and caData/);
    invalid({ fulcio: { ...FULCIO, caData: b64('x') }, rekorPublicKeyPath: '/r' }, /fulcio: only one of caPath, caData/);
    invalid({ fulcio: { ...FULCIO, oidcIssuer: '' }, rekorPublicKeyPath: '/r' }, /fulcio.oidcIssuer: must be a non-empty string/);
    invalid({ fulcio: { caPath: '/c', oidcIssuer: 'i' }, rekorPublicKeyPath: '/r' }, /fulcio.subjectEmail: must be a non-empty string/);
    invalid({ keyPath: '/k', rekorPublicKeyPath: '/r', rekorPublicKeyData: b64('r') }, /only one of rekorPublicKeyPath/);
    invalid({ pki: { caRootsPath: '/r' } }, /pki: at least one of subjectEmail and subjectHostname/);
    invalid({ pki: { subjectEmail: 'e' } }, /pki: exactly one of caRootsPath and caRootsData/);
    invalid({ pki: { caRootsPath: '/r', subjectEmail: 'e' }, rekorPublicKeyPath: '/k' }, /pki cannot be combined with Rekor public keys/);
    invalid({ keyPath: '/k', signedIdentity: { type: 'matchExact', x: 1 } }, /signedIdentity: unknown member "x"/);
  });

  it('an unknown signedIdentity type rejects the scope, it does not invalidate the file', () => {
    assert.deepEqual(req({ keyPath: '/k', signedIdentity: { type: 'matchNew' } }), { type: 'unsupported', name: 'sigstoreSigned', why: 'signedIdentity type "matchNew" is not supported by berth' });
  });
});

describe('sigstore decoders', () => {
  it('base64: one spelling only', () => {
    assert.deepEqual(decodeBase64('eHl6', 'x'), Buffer.from('xyz'));
    for (const bad of ['', 'eHl', 'eHl6\n', 'eH l6', 'eHl=', 'eA=a', 'eA-_']) assert.throws(() => decodeBase64(bad, 'x'), /x is not (canonical )?base64/);
  });

  it('PEM: blocks and whitespace only', () => {
    const pem = '-----BEGIN PUBLIC KEY-----\neHl6\n-----END PUBLIC KEY-----\n';
    assert.deepEqual(parsePem(pem + pem, 'k').map((b) => b.label), ['PUBLIC KEY', 'PUBLIC KEY']);
    assert.throws(() => parsePem(`comment\n${pem}`, 'k'), /not a sequence of PEM blocks/);
    assert.throws(() => parsePem('', 'k'), /holds no PEM block/);
    assert.throws(() => parsePem(pem.replace('END PUBLIC', 'END PRIVATE'), 'k'), /not a sequence of PEM blocks/);
  });

  it('canonical JSON (RFC 8785) sorts keys and writes numbers as ECMAScript does', () => {
    assert.equal(canonicalJson({ b: 1, a: [true, null, 'é'], logIndex: 1e21, x: 0.5 }), '{"a":[true,null,"é"],"b":1,"logIndex":1e+21,"x":0.5}');
  });

  it('cosign payloads: exact critical members, optional may be null', () => {
    const d = `sha256:${'a'.repeat(64)}`;
    const ok = (o: unknown) => parseCosignPayload(Buffer.from(JSON.stringify(o)));
    const critical = { identity: { 'docker-reference': 'r.example/app' }, image: { 'docker-manifest-digest': d }, type: 'cosign container image signature' };
    assert.equal(ok({ critical, optional: null }).dockerReference.name, 'r.example/app');
    assert.equal(ok({ critical, optional: { anything: [1], creator: 'c', timestamp: 1 } }).dockerManifestDigest, d);
    assert.throws(() => ok({ critical: { ...critical, type: 'atomic container signature' }, optional: null }), /critical.type is not "cosign container image signature"/);
    assert.throws(() => ok({ critical, optional: { timestamp: 1.5 } }), /optional.timestamp is not an integer/);
    assert.throws(() => ok({ critical }), /missing member "optional"/);
    assert.throws(() => parseCosignPayload(Buffer.from(`{"critical":${JSON.stringify(critical)},"critical":${JSON.stringify(critical)},"optional":null}`)), /duplicate member "critical"/);
  });
});
