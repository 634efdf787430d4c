// Policy parsing, scope selection, signed identity matching, strict JSON and the signature payload.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isBerthError } from '../../src/errors.ts';
import { digestOf } from '../../src/image/digest.ts';
import { parseImageReference } from '../../src/transport/index.ts';
import { parseDockerIdentity, refMatchesPrefix, validIdentityPrefix } from '../../src/trust/identity.ts';
import { identityMismatch } from '../../src/trust/match.ts';
import { buildPayload, parseUntrustedPayload } from '../../src/trust/payload.ts';
import { parsePolicy, requirementsFor, type Policy, type SignedIdentity } from '../../src/trust/policy.ts';
import { dockerScopes } from '../../src/transport/docker/scopes.ts';
import { parseStrictJson } from '../../src/strict-json.ts';

const policy = (doc: unknown): Policy => parsePolicy(Buffer.from(JSON.stringify(doc)), '/etc/containers/policy.json');
const invalidPolicy = (text: string, pattern: RegExp) =>
  assert.throws(
    () => parsePolicy(Buffer.from(text), '/x/policy.json'),
    (e: unknown) => isBerthError(e) && e.code === 'POLICY_INVALID' && e.exitCode === 8 && e.message.includes('/x/policy.json') && pattern.test(e.message),
  );
const docker = (s: string) => {
  const r = parseImageReference(`docker://${s}`);
  assert.equal(r.transport, 'docker');
  return r as Extract<typeof r, { transport: 'docker' }>;
};
const KEY = { type: 'signedBy', keyType: 'GPGKeys', keyPath: '/k.gpg' };

describe('strict JSON', () => {
  it('parses RFC 8259 JSON like JSON.parse', () => {
    const text = '{"a":[1,-2.5e3,true,false,null,"x\\u00e9\\n"],"b":{}}';
    assert.deepEqual(JSON.parse(JSON.stringify(parseStrictJson(text))), JSON.parse(text));
  });
  it('refuses duplicate members, trailing data, BOM, bad UTF-8, comments, deep nesting', () => {
    for (const bad of ['{"a":1,"a":2}', '{"a":1} x', '\ufeff{}', "{'a':1}", '{"a":1,}', '[01]', '{"a":1 /* c */}', '['.repeat(100) + ']'.repeat(100)]) {
      assert.throws(() => parseStrictJson(bad), Error, bad);
    }
    assert.throws(() => parseStrictJson(Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d])), /UTF-8/);
  });
  it('keeps "__proto__" as a plain member', () => {
    const v = parseStrictJson('{"__proto__":{"x":1}}') as Record<string, unknown>;
    assert.deepEqual(Object.keys(v), ['__proto__']);
    assert.equal(({} as Record<string, unknown>)['x'], undefined);
  });
});

describe('policy.json parsing', () => {
  it('reads requirements and key sources', () => {
    const p = policy({
      default: [{ type: 'reject' }],
      transports: {
        docker: {
          'r.example.com': [KEY],
          'r.example.com/ns': [{ type: 'signedBy', keyType: 'GPGKeys', keyPaths: ['/a', '/b'], signedIdentity: { type: 'matchRepository' } }],
          'r.example.com/data': [{ type: 'signedBy', keyType: 'GPGKeys', keyData: Buffer.from('xyz').toString('base64') }],
        },
        atomic: { 'whatever:5000/x': [{ type: 'insecureAcceptAnything' }] },
      },
    });
    const scopes = p.transports.get('docker')!;
    assert.deepEqual(scopes.get('r.example.com'), [{ type: 'signedBy', keyType: 'GPGKeys', keys: { keyPaths: ['/k.gpg'] }, signedIdentity: { type: 'matchRepoDigestOrExact' } }]);
    assert.deepEqual((scopes.get('r.example.com/ns')![0] as { keys: unknown }).keys, { keyPaths: ['/a', '/b'] });
    assert.deepEqual((scopes.get('r.example.com/data')![0] as { keys: { keyData: Buffer } }).keys.keyData, Buffer.from('xyz'));
  });

  it('parses unknown requirement types, key types and identity types as unsupported (they reject, the file stays usable)', () => {
    const p = policy({
      default: [{ type: 'signedBaseLayer', baseLayerIdentity: { type: 'matchExact' } }],
      transports: {
        docker: {
          a: [{ type: 'signedBy', keyType: 'signedByX509CAs', keyPath: '/x' }],
          b: [{ ...KEY, signedIdentity: { type: 'matchSomethingNew' } }],
        },
      },
    });
    assert.deepEqual(p.default[0], { type: 'unsupported', name: 'signedBaseLayer', why: 'requirement type "signedBaseLayer" is not supported by berth' });
    assert.match((p.transports.get('docker')!.get('a')![0] as { why: string }).why, /keyType "signedByX509CAs" is not supported/);
    assert.match((p.transports.get('docker')!.get('b')![0] as { why: string }).why, /signedIdentity type "matchSomethingNew" is not supported/);
  });

  it('rejects broken files, naming the file and the reason', () => {
    invalidPolicy('{"default": [{"type": "reject"}]', /JSON: /);
    invalidPolicy('', /JSON: unexpected end/);
    invalidPolicy('{"transports": {}}', /missing member "default"/);
    invalidPolicy('{"default": []}', /default: must not be empty/);
    invalidPolicy('{"default": [{"type":"reject"}], "extra": 1}', /unknown member "extra"/);
    invalidPolicy('{"default": [{"type":"reject"}], "default": [{"type":"insecureAcceptAnything"}]}', /duplicate member "default"/);
    invalidPolicy('{"default": [{"type":"reject", "keyPath": "/x"}]}', /unknown member "keyPath"/);
    invalidPolicy('{"default": [{"type":"signedBy","keyType":"GPGKeys"}]}', /exactly one of keyPath, keyPaths and keyData/);
    invalidPolicy('{"default": [{"type":"signedBy","keyType":"GPGKeys","keyPath":"/a","keyData":"eHl6"}]}', /exactly one of/);
    invalidPolicy('{"default": [{"type":"signedBy","keyType":"GPGKeys","keyPath":"rel/key.gpg"}]}', /must be an absolute path/);
    invalidPolicy('{"default": [{"type":"signedBy","keyType":"GPGKeys","keyData":"not base64!"}]}', /base64/);
    invalidPolicy('{"default": [{"type":"signedBy","keyType":"GPGKeys","keyPath":"/a","signedIdentity":{"type":"exactReference","dockerReference":"r.example.com/x"}}]}', /neither a tag nor a digest/);
    invalidPolicy('{"default": [{"type":"signedBy","keyType":"GPGKeys","keyPath":"/a","signedIdentity":{"type":"remapIdentity","prefix":"r.example.com/x:1","signedPrefix":"q.example.com"}}]}', /prefix/);
    invalidPolicy('{"default": [{"type":"reject"}], "transports": {"docker": {"docker://r.example.com": [{"type":"reject"}]}}}', /transport or URL prefix/);
    invalidPolicy('{"default": [{"type":"reject"}], "transports": {"oci": {"relative/dir": [{"type":"reject"}]}}}', /absolute path/);
    invalidPolicy('{"default": [{"type":"reject"}], "transports": {"oci": {"/": [{"type":"reject"}]}}}', /"\/" is not allowed/);
  });
});

describe('scope selection', () => {
  const p = policy({
    default: [{ type: 'reject' }],
    transports: {
      docker: {
        '': [{ type: 'insecureAcceptAnything' }],
        'r.example.com': [{ type: 'signedBy', keyType: 'GPGKeys', keyPath: '/host' }],
        'r.example.com:5000': [{ type: 'signedBy', keyType: 'GPGKeys', keyPath: '/host-port' }],
        'r.example.com/infra': [{ type: 'signedBy', keyType: 'GPGKeys', keyPath: '/ns' }],
        'r.example.com/infra/etcd': [{ type: 'signedBy', keyType: 'GPGKeys', keyPath: '/repo' }],
        'r.example.com/infra/etcd:3.4': [{ type: 'insecureAcceptAnything' }],
        [`r.example.com/infra/etcd@sha256:${'a'.repeat(64)}`]: [{ type: 'reject' }],
        '*.example.org': [{ type: 'signedBy', keyType: 'GPGKeys', keyPath: '/wild' }],
        'docker.io/library/busybox': [{ type: 'reject' }],
      },
      oci: { '/srv/images': [{ type: 'insecureAcceptAnything' }], '/srv/images/app:v1': [{ type: 'reject' }] },
    },
  });
  const chosen = (ref: string) => requirementsFor(p, parseImageReference(ref)).scope;

  it('picks the most specific docker scope: exact, repository, namespace, host[:port], wildcard, transport default', () => {
    assert.equal(chosen('docker://r.example.com/infra/etcd:3.4'), 'r.example.com/infra/etcd:3.4');
    assert.equal(chosen(`docker://r.example.com/infra/etcd@sha256:${'a'.repeat(64)}`), `r.example.com/infra/etcd@sha256:${'a'.repeat(64)}`);
    assert.equal(chosen('docker://r.example.com/infra/etcd:3.5'), 'r.example.com/infra/etcd');
    assert.equal(chosen('docker://r.example.com/infra/flannel:1'), 'r.example.com/infra');
    assert.equal(chosen('docker://r.example.com/other/x:1'), 'r.example.com');
    assert.equal(chosen('docker://r.example.com:5000/infra/etcd:3.4'), 'r.example.com:5000', 'host:port is its own scope; no fallback to the bare host');
    assert.equal(chosen('docker://a.b.example.org/x:1'), '*.example.org');
    assert.equal(chosen('docker://elsewhere.example.net/x:1'), '');
    assert.equal(chosen('docker://busybox'), 'docker.io/library/busybox');
    assert.equal(chosen('docker://r.example.com.evil.net/infra/etcd:3.4'), '', 'a host is not a string prefix');
  });

  it('picks oci scopes by directory, and falls back to the global default for other transports', () => {
    assert.equal(chosen('oci:/srv/images:app'), '/srv/images');
    assert.equal(chosen('oci:/srv/images/app:v1'), '/srv/images/app:v1');
    assert.equal(chosen('oci:/srv/images/app:v2'), '/srv/images');
    assert.equal(chosen('oci:/elsewhere:x'), undefined);
    assert.equal(requirementsFor(p, parseImageReference('oci:/elsewhere')).requirements[0]!.type, 'reject');
  });

  it('lists docker scopes most specific first', () => {
    assert.deepEqual(dockerScopes(docker('a.b.example.com:5000/ns/app:1')), [
      'a.b.example.com:5000/ns/app:1',
      'a.b.example.com:5000/ns/app',
      'a.b.example.com:5000/ns',
      'a.b.example.com:5000',
      '*.b.example.com',
      '*.example.com',
      '*.com',
    ]);
  });
});

describe('signed identities', () => {
  const mismatch = (rule: SignedIdentity, image: string, signed: string) => identityMismatch(rule, parseImageReference(image), parseDockerIdentity(signed));
  const ok = (rule: SignedIdentity, image: string, signed: string) => assert.equal(mismatch(rule, image, signed), undefined, `${rule.type}: ${image} vs ${signed}`);
  const no = (rule: SignedIdentity, image: string, signed: string) => assert.match(mismatch(rule, image, signed) ?? 'MATCHED', /claims identity|needs a registry/, `${rule.type}: ${image} vs ${signed}`);
  const D = `@sha256:${'b'.repeat(64)}`;

  it('parses docker references without defaulting a tag', () => {
    assert.deepEqual(parseDockerIdentity('busybox'), { name: 'docker.io/library/busybox', tag: undefined, digest: undefined });
    assert.deepEqual(parseDockerIdentity('r.example.com:5000/a/b:1.0'), { name: 'r.example.com:5000/a/b', tag: '1.0', digest: undefined });
    for (const bad of ['docker://r/x:1', '/x', 'UPPER/case:1', '', 'a b']) assert.throws(() => parseDockerIdentity(bad), Error, bad);
  });

  it('matchRepoDigestOrExact: a tag must match exactly; a digest pull accepts the repository', () => {
    const r = { type: 'matchRepoDigestOrExact' } as const;
    ok(r, 'docker://r.example.com/app:1', 'r.example.com/app:1');
    ok(r, 'docker://busybox:1', 'docker.io/library/busybox:1');
    no(r, 'docker://r.example.com/app:1', 'r.example.com/app:2');
    no(r, 'docker://r.example.com/app:1', 'r.example.com/app');
    no(r, 'docker://r.example.com/app:1', 'r.example.com/other:1');
    ok(r, `docker://r.example.com/app${D}`, 'r.example.com/app:7');
    no(r, `docker://r.example.com/app${D}`, 'r.example.com/other:7');
    ok(r, `docker://r.example.com/app:1${D}`, 'r.example.com/app:1');
    no(r, `docker://r.example.com/app:1${D}`, 'r.example.com/app:2');
  });

  it('matchExact, matchRepository, exactReference, exactRepository', () => {
    ok({ type: 'matchExact' }, 'docker://r.example.com/app:1', 'r.example.com/app:1');
    no({ type: 'matchExact' }, `docker://r.example.com/app${D}`, 'r.example.com/app:1');
    ok({ type: 'matchRepository' }, 'docker://r.example.com/app:latest', 'r.example.com/app:1.2');
    no({ type: 'matchRepository' }, 'docker://r.example.com/app:latest', 'r.example.com/app2:1.2');
    const exact = { type: 'exactReference', dockerReference: 'vendor.example.com/app:1' } as const;
    ok(exact, 'docker://mirror.local/app:whatever', 'vendor.example.com/app:1');
    no(exact, 'docker://mirror.local/app:whatever', 'vendor.example.com/app:2');
    ok(exact, 'oci:/srv/images:app', 'vendor.example.com/app:1');
    const repo = { type: 'exactRepository', dockerRepository: 'vendor.example.com/app' } as const;
    ok(repo, 'docker://mirror.local/app:x', 'vendor.example.com/app:9');
    no(repo, 'docker://mirror.local/app:x', 'vendor.example.com/other:9');
    no({ type: 'matchRepoDigestOrExact' }, 'oci:/srv/images:app', 'vendor.example.com/app:1');
  });

  it('remapIdentity replaces a matching prefix, then matches like matchRepoDigestOrExact', () => {
    const r = { type: 'remapIdentity', prefix: 'mirror.local:5000/vendor', signedPrefix: 'vendor.example.com' } as const;
    ok(r, 'docker://mirror.local:5000/vendor/product/app:1', 'vendor.example.com/product/app:1');
    no(r, 'docker://mirror.local:5000/vendor/product/app:1', 'vendor.example.com/product/app:2');
    no(r, 'docker://mirror.local:5000/vendor/product/app:1', 'mirror.local:5000/vendor/product/app:2');
    ok(r, 'docker://mirror.local:5000/other/product/app:1', 'mirror.local:5000/other/product/app:1');
    no(r, 'docker://mirror.local:5000/vendorx/app:1', 'vendor.example.comx/app:1');
    assert.equal(refMatchesPrefix('r.example.com:5000/x', 'r.example.com'), false);
    assert.equal(refMatchesPrefix('r.example.com/x:1', 'r.example.com/x'), true);
    assert.equal(validIdentityPrefix('docker.io/library'), true);
    assert.equal(validIdentityPrefix('r.example.com:5000'), true);
    assert.equal(validIdentityPrefix('library/busybox'), false);
    assert.equal(validIdentityPrefix('r.example.com/x:tag'), false);
  });
});

describe('signature payload', () => {
  const manifestDigest = digestOf('manifest');
  const good = () => JSON.parse(buildPayload({ manifestDigest, dockerReference: 'r.example.com/app:1', creator: 'berth 0', timestamp: 1700000000 }).toString()) as {
    critical: Record<string, unknown> & { image: Record<string, unknown>; identity: Record<string, unknown> };
    optional: Record<string, unknown>;
  };
  const parse = (v: unknown) => parseUntrustedPayload(Buffer.from(JSON.stringify(v)));

  it('round-trips what berth signs', () => {
    const p = parse(good());
    assert.equal(p.dockerManifestDigest, manifestDigest);
    assert.equal(p.dockerReference.name, 'r.example.com/app');
    assert.equal(p.creator, 'berth 0');
    assert.equal(p.timestamp, 1700000000);
  });

  it('accepts unknown optional members, rejects anything unexpected in critical', () => {
    const extraOptional = good();
    extraOptional.optional['future'] = { any: 'thing' };
    assert.doesNotThrow(() => parse(extraOptional));
    const cases: [string, (p: ReturnType<typeof good>) => void, RegExp][] = [
      ['critical member', (p) => (p.critical['extra'] = 1), /critical: unknown member "extra"/],
      ['image member', (p) => (p.critical.image['other-digest'] = 'x'), /critical.image: unknown member/],
      ['identity member', (p) => (p.critical.identity['tag'] = 'x'), /critical.identity: unknown member/],
      ['type', (p) => (p.critical['type'] = 'atomic container signature v2'), /critical.type/],
      ['digest', (p) => (p.critical.image['docker-manifest-digest'] = 'md5:abc'), /docker-manifest-digest/],
      ['reference', (p) => (p.critical.identity['docker-reference'] = 'Not A Ref'), /docker-reference/],
      ['creator type', (p) => (p.optional['creator'] = 7), /optional.creator/],
      ['timestamp type', (p) => (p.optional['timestamp'] = 1.5), /optional.timestamp/],
    ];
    for (const [what, mutate, pattern] of cases) {
      const p = good();
      mutate(p);
      assert.throws(() => parse(p), pattern, what);
    }
    assert.throws(() => parse({ critical: good().critical }), /missing member "optional"/);
    assert.throws(() => parse({ ...good(), extra: 1 }), /unknown member "extra"/);
    const dup = buildPayload({ manifestDigest, dockerReference: 'r.example.com/app:1', creator: 'c', timestamp: 1 })
      .toString()
      .replace('"type":', `"image":{"docker-manifest-digest":"${digestOf('other')}"},"type":`);
    assert.throws(() => parseUntrustedPayload(Buffer.from(dup)), /duplicate member "image"/);
  });
});
