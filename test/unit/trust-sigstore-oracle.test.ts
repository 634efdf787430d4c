// Differential test: the same fixtures judged by berth (checkTrust), by sigstore-js
// (@sigstore/verify 3.1, the test oracle) and by OpenSSL (signatures with `openssl dgst` /
// `pkeyutl`, chains with `openssl verify -attime`, SETs with `openssl dgst` over the
// canonical entry). Every row states the expected verdict; each oracle that can judge the
// rule must agree with it, and berth must refuse with the rule's reason. An oracle that
// cannot judge a rule (docker payload semantics, the Fulcio issuer for OpenSSL) is "n/a".
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { bundleFromJSON } from '@sigstore/bundle';
import { TrustedRoot, type PublicKey as SpecPublicKey } from '@sigstore/protobuf-specs';
import { toSignedEntity, toTrustMaterial, Verifier } from '@sigstore/verify';
import { isBerthError } from '../../src/errors.ts';
import { digestOf } from '../../src/image/digest.ts';
import type { UntrustedSigstoreSignature } from '../../src/image/sigstore.ts';
import { parseImageReference } from '../../src/transport/index.ts';
import { checkTrust } from '../../src/trust/index.ts';
import {
  canonicalEntry,
  cosignAttachment,
  makeFulcioLikeCa,
  makeKey,
  makeRekor,
  paeOf,
  PUBLIC_KEY_HINT,
  sigstoreBundle,
  TEST_EMAIL,
  TEST_OIDC_ISSUER,
  TEST_WORKFLOW_URI,
  trustedRootJson,
  type FulcioLikeCa,
  type MadeAttachment,
  type MadeBundle,
  type TestCert,
  type TestKey,
  type TestRekor,
} from '../fixtures/sigstore.ts';

const run = promisify(execFile);
const HOST = '127.0.0.1:5000';
const IMAGE = `docker://${HOST}/demo/web:1.0`;
const REPO = `${HOST}/demo/web`;
const manifestA = Buffer.from('{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":["oracle-a"]}');
const manifestB = Buffer.from('{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":["oracle-b"]}');
const digestA = digestOf(manifestA);

type Verdict = 'accept' | 'refuse' | 'n/a';
interface Material {
  /** the signing key or leaf certificate's key */
  key: TestKey;
  cert?: TestCert;
  ca?: FulcioLikeCa;
  rekor?: TestRekor;
  signature: Buffer;
  /** what was signed (cosign payload, or DSSE PAE) */
  signed: Buffer;
  set?: { entry: Parameters<typeof canonicalEntry>[0]; sig: Buffer };
  integratedTime?: number;
  /** a bundle's checkpoint: the signed note and the signature (key hint removed) */
  checkpoint?: { note: string; sig: Buffer };
}
interface Case {
  name: string;
  expect: 'accept' | RegExp;
  kind: 'keyed' | 'keyless';
  sig: UntrustedSigstoreSignature;
  material: Material;
  /** what sigstore-js verifies: a v0.1 bundle made from the attachment, or the v0.3 bundle itself */
  sigstoreJs: { bundle: object; artifact?: Buffer; san?: string; issuer?: string } | undefined;
  /** whether OpenSSL can judge this rule */
  openssl: boolean;
  /** the policy's trust: keys or fulcio */
  policyKey?: TestKey;
  email?: string;
  uris?: string[];
}

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('berth, sigstore-js and OpenSSL agree on sigstore verdicts', () => {
  let work: string;
  let n = 0;
  let rekor: TestRekor, otherRekor: TestRekor;
  let ca: FulcioLikeCa, otherCa: FulcioLikeCa;
  let ec: TestKey, rsa: TestKey, ed: TestKey, stranger: TestKey;
  const rows: string[] = [];
  const file = async (name: string, data: string | Buffer) => {
    const p = path.join(work, `${++n}-${name}`);
    await writeFile(p, data);
    return p;
  };

  before(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'berth-oracle-'));
    [rekor, otherRekor] = [makeRekor(), makeRekor()];
    [ca, otherCa] = [makeFulcioLikeCa('oracle fulcio'), makeFulcioLikeCa('oracle other')];
    [ec, rsa, ed, stranger] = [makeKey('ecdsa-p256'), makeKey('rsa'), makeKey('ed25519'), makeKey('ecdsa-p256')];
  });
  after(async () => {
    if (rows.length > 0) console.log(['', '| case | expected | berth | sigstore-js | OpenSSL |', '|---|---|---|---|---|', ...rows].join('\n'));
    if (work) await rm(work, { recursive: true, force: true });
  });

  /** cosign attachment → a v0.1 bundle (messageSignature over the payload, hashedrekord entry with its SET) */
  const v01 = (m: MadeAttachment, keyOrCert: { cert?: TestCert }): object => ({
    mediaType: 'application/vnd.dev.sigstore.bundle+json;version=0.1',
    verificationMaterial: {
      ...(keyOrCert.cert === undefined ? { publicKey: { hint: PUBLIC_KEY_HINT } } : { x509CertificateChain: { certificates: [{ rawBytes: keyOrCert.cert.der.toString('base64') }] } }),
      tlogEntries:
        m.entry === undefined || m.attachment.rekorBundle === undefined
          ? []
          : [
              {
                logIndex: String(m.entry.logIndex),
                logId: { keyId: Buffer.from(m.entry.logID, 'hex').toString('base64') },
                kindVersion: { kind: 'hashedrekord', version: '0.0.1' },
                integratedTime: String(m.entry.integratedTime),
                inclusionPromise: { signedEntryTimestamp: (JSON.parse(m.attachment.rekorBundle) as { SignedEntryTimestamp: string }).SignedEntryTimestamp },
                canonicalizedBody: m.entry.body,
              },
            ],
      timestampVerificationData: { rfc3161Timestamps: [] },
    },
    messageSignature: { messageDigest: { algorithm: 'SHA2_256', digest: createHash('sha256').update(m.payload).digest('base64') }, signature: m.signature.toString('base64') },
  });

  const keyed = (name: string, expect: Case['expect'], o: { key: TestKey; policyKey?: TestKey; digest?: string; reference?: string; tamper?: boolean }): Case => {
    const m = cosignAttachment({ manifestDigest: (o.digest ?? digestA) as typeof digestA, reference: o.reference ?? REPO, key: o.key });
    if (o.tamper === true) m.attachment.payload = Buffer.from(m.payload.toString().replace('oracle', 'oracle'.toUpperCase()).replace(/"type"/, ' "type"'));
    const payload = m.attachment.payload;
    return {
      name,
      expect,
      kind: 'keyed',
      sig: m.attachment,
      material: { key: o.key, signature: m.signature, signed: payload },
      sigstoreJs: { bundle: v01(m, {}), artifact: payload },
      openssl: o.digest === undefined && o.reference === undefined,
      policyKey: o.policyKey ?? o.key,
    };
  };

  const keyless = (
    name: string,
    expect: Case['expect'],
    o: { emails?: string[]; uris?: string[]; issuer?: string; by?: FulcioLikeCa; at?: number; setTime?: number; r?: TestRekor; noSet?: boolean; forgeSet?: boolean; digest?: string; email?: string; policyUris?: string[] } = {},
  ): Case => {
    const key = makeKey('ecdsa-p256');
    const by = o.by ?? ca;
    const at = o.at ?? Date.now() - 60_000;
    const cert = by.leaf({ at, key, emails: o.emails ?? (o.uris === undefined ? [TEST_EMAIL] : []), ...(o.uris === undefined ? {} : { uris: o.uris }), ...(o.issuer === undefined ? {} : { oidcIssuer: o.issuer }) });
    const integratedTime = o.setTime ?? Math.floor(at / 1000) + 30;
    const m = cosignAttachment({ manifestDigest: (o.digest ?? digestA) as typeof digestA, reference: REPO, key, cert, chain: [by.intermediate, by.root], rekor: o.r ?? rekor, integratedTime });
    if (o.forgeSet === true) m.attachment.rekorBundle = JSON.stringify({ SignedEntryTimestamp: otherRekor.setSignature(m.entry!).toString('base64'), Payload: m.entry });
    if (o.noSet === true) delete m.attachment.rekorBundle;
    const setSig = m.attachment.rekorBundle === undefined ? undefined : Buffer.from((JSON.parse(m.attachment.rekorBundle) as { SignedEntryTimestamp: string }).SignedEntryTimestamp, 'base64');
    return {
      name,
      expect,
      kind: 'keyless',
      sig: m.attachment,
      material: { key, cert, ca: by, rekor: o.r ?? rekor, signature: m.signature, signed: m.payload, integratedTime, ...(setSig === undefined ? {} : { set: { entry: m.entry!, sig: setSig } }) },
      sigstoreJs: { bundle: v01(m, { cert }), artifact: m.payload, san: o.email ?? TEST_EMAIL, issuer: TEST_OIDC_ISSUER },
      openssl: o.digest === undefined && o.issuer === undefined && o.uris === undefined,
      email: o.email ?? TEST_EMAIL,
      ...(o.policyUris === undefined ? {} : { uris: o.policyUris }),
    };
  };

  const bundleCase = (name: string, expect: Case['expect'], o: { forge?: (b: MadeBundle) => Buffer; emails?: string[]; by?: FulcioLikeCa; digest?: string } = {}): Case => {
    const key = makeKey('ecdsa-p256');
    const by = o.by ?? ca;
    const at = Date.now() - 60_000;
    const cert = by.leaf({ at, key, emails: o.emails ?? [TEST_EMAIL] });
    const integratedTime = Math.floor(at / 1000) + 30;
    const made = sigstoreBundle({ manifestDigest: (o.digest ?? digestA) as typeof digestA, key, cert, rekor, integratedTime });
    const bytes = o.forge === undefined ? made.bytes : o.forge(made);
    const json = JSON.parse(bytes.toString()) as {
      dsseEnvelope: { payload: string; payloadType: string; signatures: { sig: string }[] };
      verificationMaterial: { tlogEntries: { canonicalizedBody: string; integratedTime: string; logIndex: string; logId: { keyId: string }; inclusionPromise: { signedEntryTimestamp: string }; inclusionProof: { checkpoint: { envelope: string } } }[] };
    };
    const t = json.verificationMaterial.tlogEntries[0]!;
    const envelope = t.inclusionProof.checkpoint.envelope;
    const checkpoint = { note: envelope.slice(0, envelope.indexOf('\n\n') + 1), sig: Buffer.from(/ (\S+)\n$/.exec(envelope)![1]!, 'base64').subarray(4) };
    const set = { entry: { body: t.canonicalizedBody, integratedTime: Number(t.integratedTime), logIndex: Number(t.logIndex), logID: Buffer.from(t.logId.keyId, 'base64').toString('hex') }, sig: Buffer.from(t.inclusionPromise.signedEntryTimestamp, 'base64') };
    return {
      name,
      expect,
      kind: 'keyless',
      sig: { kind: 'bundle', mediaType: made.bundle.mediaType, bytes },
      material: { key, cert, ca: by, rekor, signature: Buffer.from(json.dsseEnvelope.signatures[0]!.sig, 'base64'), signed: paeOf(json.dsseEnvelope.payloadType, Buffer.from(json.dsseEnvelope.payload, 'base64')), integratedTime, set, checkpoint },
      sigstoreJs: { bundle: JSON.parse(bytes.toString()) as object, san: TEST_EMAIL, issuer: TEST_OIDC_ISSUER },
      openssl: o.digest === undefined,
      email: TEST_EMAIL,
    };
  };

  const berthVerdict = async (c: Case): Promise<{ v: Verdict; why: string }> => {
    const dir = path.join(work, `case-${++n}`);
    await mkdir(dir);
    const policyPath = path.join(dir, 'policy.json');
    const requirement =
      c.kind === 'keyed'
        ? { keyPath: await file('cosign.pub', c.policyKey!.publicPem) }
        : { fulcio: { caPath: await file('fulcio.pem', ca.intermediate.pem + ca.root.pem), oidcIssuer: TEST_OIDC_ISSUER, subjectEmail: c.email ?? TEST_EMAIL }, rekorPublicKeyPath: await file('rekor.pub', rekor.key.publicPem) };
    await writeFile(policyPath, JSON.stringify({ default: [{ type: 'reject' }], transports: { docker: { [`${HOST}/demo`]: [{ type: 'sigstoreSigned', ...requirement, signedIdentity: { type: 'matchRepository' } }] } } }));
    if (c.uris !== undefined) await writeFile(path.join(dir, 'berth-sigstore.json'), JSON.stringify({ transports: { docker: { [`${HOST}/demo`]: { subjectURIs: c.uris } } } }));
    try {
      await checkTrust(parseImageReference(IMAGE), manifestA, { policyPath }, undefined, async () => [c.sig]);
      return { v: 'accept', why: '' };
    } catch (e) {
      if (!isBerthError(e) || e.code !== 'UNTRUSTED') throw e;
      return { v: 'refuse', why: e.message };
    }
  };

  const sigstoreJsVerdict = (c: Case): Verdict => {
    const s = c.sigstoreJs;
    if (s === undefined) return 'n/a';
    try {
      const root = TrustedRoot.fromJSON(JSON.parse(trustedRootJson({ rekor: [rekor], cas: [ca] })));
      const keys: Record<string, SpecPublicKey> = {};
      if (c.kind === 'keyed') keys[PUBLIC_KEY_HINT] = { rawBytes: c.policyKey!.spki, keyDetails: 0 as SpecPublicKey['keyDetails'], validFor: { start: new Date(0) } };
      const verifier = new Verifier(toTrustMaterial(root, keys), c.kind === 'keyed' ? { tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 0 } : { tlogThreshold: 1, ctlogThreshold: 0, timestampThreshold: 1 });
      const bundle = bundleFromJSON(s.bundle);
      const entity = toSignedEntity(bundle, s.artifact);
      const uri = c.uris?.[0];
      verifier.verify(entity, c.kind === 'keyed' ? {} : { subjectAlternativeName: `^${escapeRe(uri ?? s.san ?? '')}$`, extensions: { issuer: s.issuer ?? '' } });
      return 'accept';
    } catch {
      return 'refuse';
    }
  };

  const ossl = async (...args: string[]): Promise<boolean> => {
    try {
      await run('openssl', args, { timeout: 60_000 });
      return true;
    } catch {
      return false;
    }
  };

  /** OpenSSL: the signature over what was signed, the chain at the SET's time (and email), the SET over its canonical entry. */
  const opensslVerdict = async (c: Case): Promise<Verdict> => {
    if (!c.openssl) return 'n/a';
    const m = c.material;
    const signed = await file('signed.bin', m.signed);
    const sig = await file('sig.bin', m.signature);
    const pub = await file('pub.pem', c.kind === 'keyed' ? c.policyKey!.publicPem : m.key.publicPem);
    const sigOk = (c.kind === 'keyed' ? c.policyKey! : m.key).kind === 'ed25519' ? await ossl('pkeyutl', '-verify', '-pubin', '-inkey', pub, '-rawin', '-in', signed, '-sigfile', sig) : await ossl('dgst', '-sha256', '-verify', pub, '-signature', sig, signed);
    if (!sigOk) return 'refuse';
    if (c.kind === 'keyed') return 'accept';
    if (m.set === undefined) return 'refuse';
    const setOk = await ossl('dgst', '-sha256', '-verify', await file('rekor.pub', rekor.key.publicPem), '-signature', await file('set.der', m.set.sig), await file('entry.json', canonicalEntry(m.set.entry)));
    if (!setOk) return 'refuse';
    if (m.checkpoint !== undefined && !(await ossl('dgst', '-sha256', '-verify', await file('rekor.pub', rekor.key.publicPem), '-signature', await file('cp.der', m.checkpoint.sig), await file('note.txt', m.checkpoint.note)))) return 'refuse';
    const chainOk = await ossl('verify', '-x509_strict', '-attime', String(m.integratedTime), '-CAfile', await file('root.pem', ca.root.pem), '-untrusted', await file('chain.pem', m.ca!.intermediate.pem), '-verify_email', c.email ?? TEST_EMAIL, await file('leaf.pem', m.cert!.pem));
    return chainOk ? 'accept' : 'refuse';
  };

  const cases = (): Case[] => [
    keyed('keyed ECDSA P-256', 'accept', { key: ec }),
    keyed('keyed RSA 2048', 'accept', { key: rsa }),
    keyed('keyed Ed25519', 'accept', { key: ed }),
    keyed('wrong key', /does not verify with the policy's key/, { key: stranger, policyKey: ec }),
    keyed('tampered payload', /does not verify with the policy's key/, { key: ec, tamper: true }),
    keyed('signature moved to another digest', /for manifest sha256:[0-9a-f]{64}, but this image's manifest is/, { key: ec, digest: digestOf(manifestB) }),
    keyed('other repository', /claims identity 127.0.0.1:5000\/demo\/other/, { key: ec, reference: `${HOST}/demo/other` }),
    keyless('keyless email', 'accept'),
    keyless('keyless workflow URI SAN (side file)', 'accept', { uris: [TEST_WORKFLOW_URI], policyUris: [TEST_WORKFLOW_URI] }),
    keyless('wrong email', /fulcio.subjectEmail requires/, { emails: ['mallory@berth.test'] }),
    keyless('wrong URI', /fulcio.subjectEmail \(or the scope's subjectURIs\) requires/, { uris: ['https://github.com/evil/app/.github/workflows/x.yml@refs/heads/main'], policyUris: [TEST_WORKFLOW_URI] }),
    keyless('wrong issuer', /OIDC issuer is "https:\/\/evil.test"/, { issuer: 'https://evil.test' }),
    keyless('certificate expired at the SET time', /is not valid at/, { at: Date.now() - 3600_000, setTime: Math.floor((Date.now() - 3600_000) / 1000) + 15 * 60 }),
    keyless('missing SET', /no Rekor SET/, { noSet: true }),
    keyless('forged SET', /the Rekor SET signature does not verify/, { forgeSet: true }),
    keyless('untrusted CA', /not a trusted CA/, { by: otherCa }),
    keyless('keyless, signature moved to another digest', /for manifest sha256:/, { digest: digestOf(manifestB) }),
    bundleCase('v0.3 bundle keyless', 'accept'),
    bundleCase('v0.3 bundle, wrong email', /fulcio.subjectEmail requires/, { emails: ['mallory@berth.test'] }),
    bundleCase('v0.3 bundle, untrusted CA', /not a trusted CA/, { by: otherCa }),
    bundleCase('v0.3 bundle forged (statement swapped after signing)', /another payload/, {
      forge: (b) => {
        const j = structuredClone(b.json) as { dsseEnvelope: { payload: string } };
        j.dsseEnvelope.payload = Buffer.from(Buffer.from(j.dsseEnvelope.payload, 'base64').toString().replace('"predicate":{}', '"predicate":{"x":1}')).toString('base64');
        return Buffer.from(JSON.stringify(j));
      },
    }),
    bundleCase('v0.3 bundle forged (checkpoint signature)', /checkpoint is not signed/, {
      forge: (b) => {
        const j = structuredClone(b.json) as { verificationMaterial: { tlogEntries: { inclusionProof: { checkpoint: { envelope: string } } }[] } };
        const cp = j.verificationMaterial.tlogEntries[0]!.inclusionProof.checkpoint;
        cp.envelope = cp.envelope.replace(/ (\S+)\n$/, (_m, s: string) => ` ${Buffer.concat([Buffer.from(s, 'base64').subarray(0, 4), Buffer.alloc(70, 7)]).toString('base64')}\n`);
        return Buffer.from(JSON.stringify(j));
      },
    }),
  ];

  it('every case: berth matches the expected verdict with the rule in its one-line reason, and every oracle that can judge agrees', async () => {
    const failures: string[] = [];
    for (const c of cases()) {
      const want: Verdict = c.expect === 'accept' ? 'accept' : 'refuse';
      const b = await berthVerdict(c);
      const s = sigstoreJsVerdict(c);
      // sigstore-js does not read docker payloads: it judges signatures, chains, SETs and identities, not which image a payload names.
      // Nor does it verify Ed25519 messageSignatures: it hashes the artifact with SHA-256 first, which Ed25519 (pure) cannot use.
      const sj: Verdict = (/digest|repository/.test(c.name) && s === 'accept') || (c.name === 'keyed Ed25519' && s === 'refuse') ? 'n/a' : s;
      const o = await opensslVerdict(c);
      rows.push(`| ${c.name} | ${want} | ${b.v} | ${sj} | ${o} |`);
      if (b.v !== want) failures.push(`${c.name}: berth ${b.v} (${b.why}), expected ${want}`);
      if (c.expect !== 'accept' && !c.expect.test(b.why)) failures.push(`${c.name}: berth's reason ${JSON.stringify(b.why)} does not match ${c.expect}`);
      if (b.why.includes('\n')) failures.push(`${c.name}: the reason is not one line`);
      if (sj !== 'n/a' && sj !== want) failures.push(`${c.name}: sigstore-js ${sj}, expected ${want}`);
      if (o !== 'n/a' && o !== want) failures.push(`${c.name}: OpenSSL ${o}, expected ${want}`);
    }
    assert.deepEqual(failures, []);
    // The oracles really judged: most rows have both verdicts.
    assert.ok(rows.filter((r) => !r.includes('n/a')).length >= 12, rows.join('\n'));
  });
});
