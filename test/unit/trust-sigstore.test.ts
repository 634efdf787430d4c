// The sigstoreSigned requirement end to end through checkTrust: policy.json on disk,
// cosign signature attachments made by test/fixtures/sigstore.ts (keys of each kind,
// a Fulcio-like CA, a test Rekor log), and one test per way to be accepted or refused.
// Agreement with sigstore-js and OpenSSL on the same material: trust-sigstore-oracle.test.ts.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isBerthError } from '../../src/errors.ts';
import { digestOf } from '../../src/image/digest.ts';
import type { UntrustedSigstoreSignature } from '../../src/image/sigstore.ts';
import { parseImageReference } from '../../src/transport/index.ts';
import { checkTrust, type TrustVerdict } from '../../src/trust/index.ts';
import { buildCosignPayload } from '../../src/trust/sigstore/payload.ts';
import {
  cosignAttachment,
  makeCert,
  makeFulcioLikeCa,
  makeKey,
  makeRekor,
  TEST_EMAIL,
  TEST_OIDC_ISSUER,
  TEST_WORKFLOW_URI,
  sigstoreBundle,
  statementFor,
  trustedRootJson,
  type FulcioLikeCa,
  type TestKey,
  type TestRekor,
} from '../fixtures/sigstore.ts';

const HOST = '127.0.0.1:5000';
const IMAGE = `docker://${HOST}/demo/web:1.0`;
const REPO = `${HOST}/demo/web`;
const manifestA = Buffer.from('{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":["a"]}');
const manifestB = Buffer.from('{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":["b"]}');
const digestA = digestOf(manifestA);
const nowS = () => Math.floor(Date.now() / 1000);

describe('sigstoreSigned', () => {
  let work: string;
  let n = 0;
  let ec: TestKey, rsa: TestKey, ed: TestKey, stranger: TestKey;
  let rekor: TestRekor, otherRekor: TestRekor;
  let ca: FulcioLikeCa, otherCa: FulcioLikeCa;
  const file = async (name: string, text: string) => {
    const p = path.join(work, `${++n}-${name}`);
    await writeFile(p, text);
    return p;
  };

  before(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'berth-sigstore-'));
    [ec, rsa, ed, stranger] = [makeKey('ecdsa-p256'), makeKey('rsa'), makeKey('ed25519'), makeKey('ecdsa-p256')];
    [rekor, otherRekor] = [makeRekor(), makeRekor()];
    [ca, otherCa] = [makeFulcioLikeCa(), makeFulcioLikeCa('other fulcio')];
  });
  after(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  /** Writes a policy with `requirement` for the demo namespace (and an optional side file); returns checkTrust's options. */
  const policy = async (requirement: object, side?: object) => {
    const dir = path.join(work, `case-${++n}`);
    await import('node:fs/promises').then((fs) => fs.mkdir(dir));
    const policyPath = path.join(dir, 'policy.json');
    await writeFile(policyPath, JSON.stringify({ default: [{ type: 'reject' }], transports: { docker: { [`${HOST}/demo`]: [{ type: 'sigstoreSigned', ...requirement }] } } }));
    if (side !== undefined) await writeFile(path.join(dir, 'berth-sigstore.json'), JSON.stringify(side));
    return { policyPath };
  };
  const check = (options: { policyPath: string }, sigs: UntrustedSigstoreSignature[], manifest = manifestA, image = IMAGE) =>
    checkTrust(parseImageReference(image), manifest, options, undefined, async (d) => {
      assert.equal(d, digestOf(manifest));
      return sigs;
    });
  const refused = async (p: Promise<unknown>, ...patterns: RegExp[]) => {
    await assert.rejects(p, (e: unknown) => {
      assert.ok(isBerthError(e), `a BerthError, got ${String(e)}`);
      assert.equal(e.code, 'UNTRUSTED', e.message);
      assert.doesNotMatch(e.message, /\n/, 'one line');
      const text = [e.message, ...e.details].join('\n');
      for (const re of patterns) assert.match(text, re);
      return true;
    });
  };
  const keyless = (o: { leafKey?: TestKey; emails?: string[]; uris?: string[]; issuer?: string; by?: FulcioLikeCa; at?: number; setTime?: number; r?: TestRekor; manifest?: Buffer }) => {
    const by = o.by ?? ca;
    const key = o.leafKey ?? makeKey('ecdsa-p256');
    const at = o.at ?? Date.now() - 60_000;
    const cert = by.leaf({ at, key, emails: o.emails ?? (o.uris === undefined ? [TEST_EMAIL] : []), ...(o.uris === undefined ? {} : { uris: o.uris }), ...(o.issuer === undefined ? {} : { oidcIssuer: o.issuer }) });
    return cosignAttachment({ manifestDigest: digestOf(o.manifest ?? manifestA), reference: REPO, key, cert, chain: [by.intermediate, by.root], rekor: o.r ?? rekor, integratedTime: o.setTime ?? Math.floor(at / 1000) + 30 });
  };
  // As sigstore's Fulcio CA file: the intermediate and the root (bundles carry only the leaf).
  const fulcioPolicy = async (extra: object = {}, side?: object) =>
    policy({ fulcio: { caPath: await file('fulcio.pem', ca.intermediate.pem + ca.root.pem), oidcIssuer: TEST_OIDC_ISSUER, subjectEmail: TEST_EMAIL }, rekorPublicKeyPath: await file('rekor.pub', rekor.key.publicPem), signedIdentity: { type: 'matchRepository' }, ...extra }, side);

  describe('public keys', () => {
    for (const kind of ['ecdsa-p256', 'rsa', 'ed25519'] as const) {
      it(`accepts a cosign signature by a trusted ${kind} key, returning the signatures and the signer`, async () => {
        const key = { 'ecdsa-p256': ec, rsa, ed25519: ed }[kind];
        const options = await policy({ keyPath: await file('cosign.pub', key.publicPem), signedIdentity: { type: 'matchRepository' } });
        const sig = cosignAttachment({ manifestDigest: digestA, reference: REPO, key }).attachment;
        const v: TrustVerdict = await check(options, [sig]);
        assert.deepEqual(v.sigstoreSignatures, [sig]);
        assert.match(v.sigstoreSigner ?? '', new RegExp(`^${kind} key SHA256:`));
        assert.match(v.requirement, /sigstoreSigned \(keys .*cosign\.pub; matchRepository\)/);
      });
    }

    it('accepts keyPaths, keyData and keyDatas, and the exact reference under matchRepoDigestOrExact', async () => {
      const sig = cosignAttachment({ manifestDigest: digestA, reference: `${REPO}:1.0`, key: ed }).attachment;
      await check(await policy({ keyPaths: [await file('a.pub', stranger.publicPem), await file('b.pub', ed.publicPem)] }), [sig]);
      await check(await policy({ keyData: Buffer.from(ed.publicPem).toString('base64') }), [sig]);
      await check(await policy({ keyDatas: [Buffer.from(stranger.publicPem).toString('base64'), Buffer.from(ed.publicPem).toString('base64')] }), [sig]);
    });

    it('refuses a signature by another key (wrong key)', async () => {
      const options = await policy({ keyPath: await file('cosign.pub', ec.publicPem), signedIdentity: { type: 'matchRepository' } });
      await refused(check(options, [cosignAttachment({ manifestDigest: digestA, reference: REPO, key: stranger }).attachment]), /requires sigstoreSigned .* but cosign signature #1: the signature does not verify with the policy's key \(wrong key or tampered payload\)/);
    });

    it('refuses a tampered payload', async () => {
      const options = await policy({ keyPath: await file('cosign.pub', ec.publicPem), signedIdentity: { type: 'matchRepository' } });
      const a = cosignAttachment({ manifestDigest: digestOf(manifestB), reference: REPO, key: ec }).attachment;
      a.payload = buildCosignPayload(REPO, digestA); // the bytes now name this image, the signature does not cover them
      await refused(check(options, [a]), /does not verify with the policy's key/);
    });

    it('refuses a signature moved to another digest', async () => {
      const options = await policy({ keyPath: await file('cosign.pub', ec.publicPem), signedIdentity: { type: 'matchRepository' } });
      const a = cosignAttachment({ manifestDigest: digestOf(manifestB), reference: REPO, key: ec }).attachment;
      await refused(check(options, [a]), new RegExp(`for manifest ${digestOf(manifestB)}, but this image's manifest is ${digestA}`));
    });

    it('refuses a signature for another repository (signedIdentity)', async () => {
      const options = await policy({ keyPath: await file('cosign.pub', ec.publicPem), signedIdentity: { type: 'matchRepository' } });
      const a = cosignAttachment({ manifestDigest: digestA, reference: `${HOST}/demo/other`, key: ec }).attachment;
      await refused(check(options, [a]), /claims identity 127.0.0.1:5000\/demo\/other, the image is in repository 127.0.0.1:5000\/demo\/web \(matchRepository\) \(signedIdentity\)/);
      // matchRepoDigestOrExact (the default) wants the tag cosign does not sign
      const b = cosignAttachment({ manifestDigest: digestA, reference: REPO, key: ec }).attachment;
      await refused(check(await policy({ keyPath: await file('cosign.pub', ec.publicPem) }), [b]), /expected 127.0.0.1:5000\/demo\/web:1.0 \(matchRepoDigestOrExact\)/);
    });

    it('fails closed on malformed input: non-canonical base64, unknown critical members, large payloads', async () => {
      const options = await policy({ keyPath: await file('cosign.pub', ec.publicPem), signedIdentity: { type: 'matchRepository' } });
      const good = cosignAttachment({ manifestDigest: digestA, reference: REPO, key: ec }).attachment;
      await refused(check(options, [{ ...good, signature: `${good.signature.slice(0, 8)}\n${good.signature.slice(8)}` }]), /signature .* is not base64/);
      const crit = JSON.parse(good.payload.toString()) as { critical: Record<string, unknown> };
      crit.critical['restrictions'] = {};
      const payload = Buffer.from(JSON.stringify(crit));
      const { signBytes } = await import('../fixtures/sigstore.ts');
      await refused(check(options, [{ ...good, payload, signature: signBytes(ec, payload).toString('base64') }]), /payload critical: unknown member "restrictions"/);
      await refused(check(options, [{ ...good, payload: Buffer.alloc(65 * 1024, 0x20) }]), /payload is larger than 65536 bytes/);
    });

    it('lists every reason when several signatures are refused, and accepts when any one is good', async () => {
      const options = await policy({ keyPath: await file('cosign.pub', ec.publicPem), signedIdentity: { type: 'matchRepository' } });
      const bad = cosignAttachment({ manifestDigest: digestA, reference: REPO, key: stranger }).attachment;
      const moved = cosignAttachment({ manifestDigest: digestOf(manifestB), reference: REPO, key: ec }).attachment;
      await refused(check(options, [bad, moved]), /none of its 2 sigstore signatures is acceptable/, /cosign signature #1: the signature does not verify/, /cosign signature #2: .*for manifest/);
      const good = cosignAttachment({ manifestDigest: digestA, reference: REPO, key: ec }).attachment;
      assert.equal((await check(options, [bad, moved, good])).sigstoreSignatures.length, 3);
    });

    it('with Rekor keys, requires a SET that binds this key, signature and payload', async () => {
      const options = await policy({ keyPath: await file('cosign.pub', ec.publicPem), rekorPublicKeyPath: await file('rekor.pub', rekor.key.publicPem), signedIdentity: { type: 'matchRepository' } });
      await check(options, [cosignAttachment({ manifestDigest: digestA, reference: REPO, key: ec, rekor }).attachment]);
      await refused(check(options, [cosignAttachment({ manifestDigest: digestA, reference: REPO, key: ec }).attachment]), /no Rekor SET/);
      await refused(check(options, [cosignAttachment({ manifestDigest: digestA, reference: REPO, key: ec, rekor: otherRekor }).attachment]), /Rekor SET: the Rekor SET is from log [0-9a-f]{64}, not from a trusted Rekor key/);
      // forged: the right log ID, signed by another key
      const made = cosignAttachment({ manifestDigest: digestA, reference: REPO, key: ec, rekor });
      const forged = JSON.stringify({ SignedEntryTimestamp: otherRekor.setSignature(made.entry!).toString('base64'), Payload: made.entry });
      await refused(check(options, [{ ...made.attachment, rekorBundle: forged }]), /the Rekor SET signature does not verify with the trusted Rekor key/);
      // a genuine SET of another signature
      const other = cosignAttachment({ manifestDigest: digestA, reference: REPO, key: ec, rekor, payload: buildCosignPayload(REPO, digestA, { x: 1 }) });
      await refused(check(options, [{ ...made.attachment, rekorBundle: other.attachment.rekorBundle! }]), /the Rekor entry is for another payload/);
    });

    it('asks the source only when a sigstoreSigned requirement applies, and fails closed when it cannot be read', async () => {
      let asked = 0;
      const dir = await mkdtemp(path.join(work, 'accept-'));
      const policyPath = path.join(dir, 'policy.json');
      await writeFile(policyPath, JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }));
      const v = await checkTrust(parseImageReference(IMAGE), manifestA, { policyPath }, undefined, async () => {
        asked++;
        return [];
      });
      assert.equal(asked, 0);
      assert.deepEqual(v.sigstoreSignatures, []);
      const options = await policy({ keyPath: await file('cosign.pub', ec.publicPem) });
      await refused(checkTrust(parseImageReference(IMAGE), manifestA, options), /has no sigstore signatures/);
      await refused(
        checkTrust(parseImageReference(IMAGE), manifestA, options, undefined, async () => {
          throw new Error('registry said 503');
        }),
        /its sigstore signatures cannot be read: registry said 503/,
      );
    });

    it('refuses when the policy\'s key cannot be used, naming the file', async () => {
      await refused(check(await policy({ keyPath: path.join(work, 'missing.pub') }), [cosignAttachment({ manifestDigest: digestA, reference: REPO, key: ec }).attachment]), /trust material cannot be used: cannot read .*missing\.pub/);
      const weak = (await import('node:crypto')).generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
      await refused(check(await policy({ keyPath: await file('weak.pub', weak) }), [cosignAttachment({ manifestDigest: digestA, reference: REPO, key: ec }).attachment]), /RSA key of 1024 bits/);
    });
  });

  describe('keyless (fulcio + Rekor)', () => {
    it('accepts a certificate of the policy\'s CA for the policy\'s email and issuer, checked at the SET\'s time', async () => {
      const v = await check(await fulcioPolicy(), [keyless({}).attachment]);
      assert.equal(v.sigstoreSigner, `${TEST_EMAIL} (${TEST_OIDC_ISSUER})`);
    });

    it('accepts certificates with only the v1 or only the v2 issuer extension; refuses one with neither or two different ones', async () => {
      const options = await fulcioPolicy();
      for (const variant of [{ v1Only: true }, { v2Only: true }]) {
        const key = makeKey();
        const cert = ca.leaf({ at: Date.now() - 60_000, key, emails: [TEST_EMAIL], ...variant });
        await check(options, [cosignAttachment({ manifestDigest: digestA, reference: REPO, key, cert, chain: [ca.intermediate], rekor, integratedTime: nowS() - 30 }).attachment]);
      }
      const key = makeKey();
      const none = makeCert({ cn: 'x', key, issuer: ca.intermediate, notBefore: Date.now() - 60_000, notAfter: Date.now() + 600_000, emails: [TEST_EMAIL] });
      await refused(check(options, [cosignAttachment({ manifestDigest: digestA, reference: REPO, key, cert: none, chain: [ca.intermediate], rekor, integratedTime: nowS() - 30 }).attachment]), /no Fulcio OIDC issuer extension/);
      const two = makeCert({ cn: 'x', key, issuer: ca.intermediate, notBefore: Date.now() - 60_000, notAfter: Date.now() + 600_000, emails: [TEST_EMAIL], oidcIssuerV1: TEST_OIDC_ISSUER, oidcIssuerV2: 'https://evil.test' });
      await refused(check(options, [cosignAttachment({ manifestDigest: digestA, reference: REPO, key, cert: two, chain: [ca.intermediate], rekor, integratedTime: nowS() - 30 }).attachment]), /names two OIDC issuers/);
    });

    it('refuses another email (wrong email)', async () => {
      await refused(check(await fulcioPolicy(), [keyless({ emails: ['mallory@berth.test'] }).attachment]), /the certificate is for "mallory@berth.test", fulcio.subjectEmail requires "builder@berth.test"/);
    });

    it('refuses another issuer (wrong issuer)', async () => {
      await refused(check(await fulcioPolicy(), [keyless({ issuer: 'https://accounts.evil.test' }).attachment]), /OIDC issuer is "https:\/\/accounts.evil.test", fulcio.oidcIssuer requires "https:\/\/oidc.berth.test"/);
    });

    it('refuses a certificate that expired before the SET\'s time, or was not yet valid', async () => {
      const at = Date.now() - 3600_000;
      await refused(check(await fulcioPolicy(), [keyless({ at, setTime: Math.floor(at / 1000) + 11 * 60 }).attachment]), /the certificate .* is not valid at .* \(valid .* to .*\)/);
      await refused(check(await fulcioPolicy(), [keyless({ at, setTime: Math.floor(at / 1000) - 60 }).attachment]), /is not valid at/);
      // but a short-lived certificate long expired *now* is fine: the SET says it signed in time
      await check(await fulcioPolicy(), [keyless({ at, setTime: Math.floor(at / 1000) + 60 }).attachment]);
    });

    it('refuses a missing, forged or foreign SET', async () => {
      const options = await fulcioPolicy();
      const made = keyless({});
      const { rekorBundle: _drop, ...noSet } = made.attachment;
      await refused(check(options, [noSet]), /no Rekor SET/);
      const forged = JSON.stringify({ SignedEntryTimestamp: otherRekor.setSignature(made.entry!).toString('base64'), Payload: made.entry });
      await refused(check(options, [{ ...made.attachment, rekorBundle: forged }]), /the Rekor SET signature does not verify/);
      await refused(check(options, [keyless({ r: otherRekor }).attachment]), /not from a trusted Rekor key/);
      // a SET whose time was moved (signature no longer covers it)
      const moved = JSON.stringify({ SignedEntryTimestamp: rekor.setSignature(made.entry!).toString('base64'), Payload: { ...made.entry, integratedTime: made.entry!.integratedTime + 1 } });
      await refused(check(options, [{ ...made.attachment, rekorBundle: moved }]), /the Rekor SET signature does not verify/);
    });

    it('refuses a certificate of an untrusted CA', async () => {
      await refused(check(await fulcioPolicy(), [keyless({ by: otherCa }).attachment]), /the certificate chain does not verify: its issuer .*other fulcio intermediate is not a trusted CA/);
    });

    it('refuses a signature not made by the certificate\'s key, and a certificate with an unknown critical extension', async () => {
      const options = await fulcioPolicy();
      const made = keyless({});
      const other = keyless({});
      await refused(check(options, [{ ...made.attachment, signature: other.attachment.signature }]), /the Rekor entry is for another signature/);
      const key = makeKey();
      const cert = ca.leaf({ at: Date.now() - 60_000, key, emails: [TEST_EMAIL], extra: { oid: '1.2.3.4.5', critical: true, value: Buffer.from([5, 0]) } });
      await refused(check(options, [cosignAttachment({ manifestDigest: digestA, reference: REPO, key, cert, chain: [ca.intermediate], rekor, integratedTime: nowS() - 30 }).attachment]), /unknown critical extension 1.2.3.4.5/);
    });

    it('accepts a workflow\'s URI SAN only when berth-sigstore.json lists it for the scope', async () => {
      const sig = keyless({ uris: [TEST_WORKFLOW_URI] }).attachment;
      await refused(check(await fulcioPolicy(), [sig]), /the certificate is for "https:\/\/github.com\/berth-test\/app\/.github\/workflows\/release.yml@refs\/tags\/v1.0.0", fulcio.subjectEmail requires/);
      const side = { transports: { docker: { [`${HOST}/demo`]: { subjectURIs: [TEST_WORKFLOW_URI] } } } };
      assert.equal((await check(await fulcioPolicy({}, side), [sig])).sigstoreSigner, `${TEST_WORKFLOW_URI} (${TEST_OIDC_ISSUER})`);
      const elsewhere = { transports: { docker: { [`${HOST}/other`]: { subjectURIs: [TEST_WORKFLOW_URI] } } } };
      await refused(check(await fulcioPolicy({}, elsewhere), [sig]), /fulcio.subjectEmail requires/);
      await assert.rejects(check(await fulcioPolicy({}, { transports: { docker: { x: { subjectURI: 'a' } } } }), [sig]), (e: unknown) => isBerthError(e) && e.code === 'POLICY_INVALID' && /berth-sigstore.json is invalid .*unknown member "subjectURI"/.test(e.message));
    });
  });

  describe('pki', () => {
    it('accepts a certificate of the operator\'s CA for the email and host name; refuses others', async () => {
      const pkiCa = makeFulcioLikeCa('operator pki');
      const key = makeKey('ecdsa-p256');
      const cert = makeCert({ cn: 'signer', key, issuer: pkiCa.intermediate, notBefore: Date.now() - 60_000, notAfter: Date.now() + 3600_000, emails: ['ci@berth.test'], dnsNames: ['build.berth.test'] });
      const sig = cosignAttachment({ manifestDigest: digestA, reference: REPO, key, cert, chain: [] }).attachment;
      const roots = await file('roots.pem', pkiCa.root.pem);
      const inter = await file('inter.pem', pkiCa.intermediate.pem);
      const pki = (p: object) => policy({ pki: { caRootsPath: roots, caIntermediatesPath: inter, ...p }, signedIdentity: { type: 'matchRepository' } });
      assert.equal((await check(await pki({ subjectEmail: 'ci@berth.test', subjectHostname: 'build.berth.test' }), [sig])).sigstoreSigner, 'ci@berth.test build.berth.test');
      await refused(check(await pki({ subjectEmail: 'other@berth.test' }), [sig]), /pki.subjectEmail requires "other@berth.test"/);
      await refused(check(await pki({ subjectHostname: 'evil.berth.test' }), [sig]), /pki.subjectHostname requires "evil.berth.test"/);
      await refused(check(await policy({ pki: { caRootsPath: roots, subjectEmail: 'ci@berth.test' }, signedIdentity: { type: 'matchRepository' } }), [sig]), /not a trusted CA/);
      const expired = makeCert({ cn: 'signer', key, issuer: pkiCa.intermediate, notBefore: Date.now() - 7200_000, notAfter: Date.now() - 3600_000, emails: ['ci@berth.test'] });
      await refused(check(await pki({ subjectEmail: 'ci@berth.test' }), [cosignAttachment({ manifestDigest: digestA, reference: REPO, key, cert: expired }).attachment]), /is not valid at/);
    });
  });

  describe('Sigstore bundles v0.3', () => {
    const leafFor = (key: TestKey, o: { emails?: string[]; uris?: string[]; at?: number; by?: FulcioLikeCa } = {}) =>
      (o.by ?? ca).leaf({ at: o.at ?? Date.now() - 60_000, key, emails: o.emails ?? [TEST_EMAIL], ...(o.uris === undefined ? {} : { uris: o.uris }) });
    const keylessBundle = (o: Partial<Parameters<typeof sigstoreBundle>[0]> & { emails?: string[]; at?: number; by?: FulcioLikeCa } = {}) => {
      const key = makeKey();
      const at = o.at ?? Date.now() - 60_000;
      return sigstoreBundle({ manifestDigest: digestA, key, cert: leafFor(key, { at, ...(o.emails === undefined ? {} : { emails: o.emails }), ...(o.by === undefined ? {} : { by: o.by }) }), rekor, integratedTime: Math.floor(at / 1000) + 30, ...o });
    };
    const rootSide = async (r: object = { rekor: [rekor], cas: [ca] }) => ({ transports: { docker: { [`${HOST}/demo`]: { trustedRoot: await file('trusted_root.json', trustedRootJson(r as Parameters<typeof trustedRootJson>[0])) } } } });

    it('accepts a keyless DSSE bundle against the policy\'s CA and Rekor key, and against a pinned trusted_root.json', async () => {
      const b = keylessBundle().bundle;
      assert.equal((await check(await fulcioPolicy(), [b])).sigstoreSigner, `${TEST_EMAIL} (${TEST_OIDC_ISSUER})`);
      assert.deepEqual((await check(await fulcioPolicy({}, await rootSide()), [b])).sigstoreSignatures, [b]);
    });

    it('accepts a bundle with only the SET (no inclusion proof), and a public-key bundle', async () => {
      await check(await fulcioPolicy(), [keylessBundle({ proof: false }).bundle]);
      const options = await policy({ keyPath: await file('cosign.pub', ec.publicPem), rekorPublicKeyPath: await file('rekor.pub', rekor.key.publicPem), signedIdentity: { type: 'matchRepository' } });
      await check(options, [sigstoreBundle({ manifestDigest: digestA, key: ec, rekor }).bundle]);
      await refused(check(options, [sigstoreBundle({ manifestDigest: digestA, key: stranger, rekor }).bundle]), /sigstore bundle #1: the DSSE signature does not verify with the policy's key/);
    });

    it('refuses a forged bundle: tampered statement, swapped signature, forged SET, forged checkpoint, foreign proof', async () => {
      const options = await fulcioPolicy();
      const made = keylessBundle();
      const j = () => structuredClone(made.json) as { dsseEnvelope: { payload: string; signatures: { sig: string }[] }; verificationMaterial: { tlogEntries: Record<string, unknown>[] } };
      const as = (x: object) => ({ kind: 'bundle' as const, mediaType: made.bundle.mediaType, bytes: Buffer.from(JSON.stringify(x)) });
      const t1 = j();
      t1.dsseEnvelope.payload = Buffer.from(JSON.stringify(statementFor(digestOf(manifestB)))).toString('base64');
      await refused(check(options, [as(t1)]), /the Rekor entry is for another payload/);
      const t2 = j();
      t2.dsseEnvelope.signatures[0]!.sig = (JSON.parse(keylessBundle().bytes.toString()) as typeof t2).dsseEnvelope.signatures[0]!.sig;
      await refused(check(options, [as(t2)]), /the Rekor entry is for another signature/);
      const t3 = j();
      (t3.verificationMaterial.tlogEntries[0]!['inclusionPromise'] as { signedEntryTimestamp: string }).signedEntryTimestamp = otherRekor.setSignature({ body: 'eA==', integratedTime: 1, logIndex: 1, logID: rekor.logID }).toString('base64');
      await refused(check(options, [as(t3)]), /the Rekor SET signature does not verify/);
      const t4 = j();
      const proof = t4.verificationMaterial.tlogEntries[0]!['inclusionProof'] as { checkpoint: { envelope: string } };
      proof.checkpoint.envelope = proof.checkpoint.envelope.replace(/ (\S+)\n$/, (_m, sig: string) => ` ${Buffer.concat([Buffer.from(sig, 'base64').subarray(0, 4), Buffer.alloc(64, 1)]).toString('base64')}\n`);
      await refused(check(options, [as(t4)]), /the checkpoint is not signed by the Rekor key/);
      const t5 = j();
      (t5.verificationMaterial.tlogEntries[0]!['inclusionProof'] as { hashes: string[] }).hashes.reverse();
      await refused(check(options, [as(t5)]), /the inclusion proof does not lead to its root hash/);
      await refused(check(options, [keylessBundle({ promise: false }).bundle]), /has no inclusionPromise \(SET\)/);
      await refused(check(options, [{ ...made.bundle, bytes: Buffer.from(made.bytes.toString().replace('{', '{"extra":1,')) }]), /the bundle: unknown member "extra"/);
      await refused(check(options, [{ ...made.bundle, mediaType: 'application/vnd.dev.sigstore.bundle.v0.2+json' }]), /not supported \(only application\/vnd.dev.sigstore.bundle.v0.3\+json\)/);
    });

    it('refuses wrong email, untrusted CA, another digest, other repository and an expired certificate', async () => {
      const options = await fulcioPolicy();
      await refused(check(options, [keylessBundle({ emails: ['mallory@berth.test'] }).bundle]), /fulcio.subjectEmail requires/);
      await refused(check(options, [keylessBundle({ by: otherCa }).bundle]), /not a trusted CA/);
      await refused(check(options, [keylessBundle({ manifestDigest: digestOf(manifestB) }).bundle]), new RegExp(`for sha256:${digestOf(manifestB).slice(7)}, but this image's manifest is ${digestA}`));
      await refused(check(options, [keylessBundle({ name: `${HOST}/demo/other` }).bundle]), /claims identity 127.0.0.1:5000\/demo\/other/);
      const at = Date.now() - 3600_000;
      await refused(check(options, [keylessBundle({ at, integratedTime: Math.floor(at / 1000) + 20 * 60 }).bundle]), /is not valid at/);
      // no name: the repository pulled from stands for it; matchRepoDigestOrExact on a tag then refuses
      const exact = await policy({ fulcio: { caPath: await file('fulcio.pem', ca.intermediate.pem + ca.root.pem), oidcIssuer: TEST_OIDC_ISSUER, subjectEmail: TEST_EMAIL }, rekorPublicKeyPath: await file('rekor.pub', rekor.key.publicPem) });
      await refused(check(exact, [keylessBundle().bundle]), /the bundle names no image, only this repository stands for it/);
      await check(exact, [keylessBundle().bundle], manifestA, `docker://${REPO}@${digestA}`);
    });

    it('with a trusted_root.json, uses its CAs and logs within their validity windows only', async () => {
      const b = keylessBundle().bundle;
      await refused(check(await fulcioPolicy({}, await rootSide({ rekor: [otherRekor], cas: [ca] })), [b]), /not from a trusted Rekor key/);
      await refused(check(await fulcioPolicy({}, await rootSide({ rekor: [rekor], cas: [otherCa] })), [b]), /not a trusted CA/);
      await refused(check(await fulcioPolicy({}, await rootSide({ rekor: [rekor], cas: [ca], start: Date.now() - 10_000 })), [b]), /not from a trusted Rekor key/);
      await refused(check(await fulcioPolicy({}, { transports: { docker: { [`${HOST}/demo`]: { trustedRoot: await file('bad.json', '{"mediaType":"x"}') } } } }), [b]), /has mediaType "x"/);
    });
  });
});
