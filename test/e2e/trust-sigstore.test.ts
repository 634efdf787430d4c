/**
 * Sigstore signatures from registries, end to end, with the real CLI and
 * Debian's docker-registry (its access log is the record of what berth
 * fetched): cosign attachments (`sha256-HEX.sig`) found through registries.d
 * use-sigstore-attachments, keyless signatures made here with a test
 * Fulcio-like CA and a test Rekor key accepted and each kind of bad one
 * refused in one line with exit 8 before any layer or config blob is
 * requested; the signatures kept with the image and re-checked from the store
 * (save), carried by save/load bundles; and skopeo (Debian's 1.9.3, whose
 * sigstore signing and verification are patched out) copying the attachments
 * to a second registry, where they still verify.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Digest } from '../../src/image/digest.ts';
import type { UntrustedCosignAttachment } from '../../src/image/sigstore.ts';
import { buildImage, pushImage, type BuiltImage } from '../fixtures/oci-image.ts';
import {
  cosignAttachment, makeFulcioLikeCa, makeKey, makeRekor, sigstoreBundle, statementFor, TEST_EMAIL, TEST_OIDC_ISSUER, TEST_WORKFLOW_URI,
  type FulcioLikeCa, type TestKey, type TestRekor,
} from '../fixtures/sigstore.ts';
import { pushBundleReferrers, pushCosignAttachments } from '../fixtures/sigstore-push.ts';
import { skopeoCopy, TestRegistry } from '../harness/registry.ts';
import { TestHost } from '../harness/test-host.ts';

const BERTH = fileURLToPath(new URL('../../bin/berth.js', import.meta.url));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * berth's error as printed: exactly one `berth: error: …` line (progress lines
 * come before it), followed only by indented detail lines (one per
 * signature when there are several). Returns the error line and its details.
 */
function errorText(stderr: string): string {
  const lines = stderr.trimEnd().split('\n');
  const at = lines.findIndex((l) => l.startsWith('berth: error: '));
  assert.ok(at >= 0, `an error line: ${stderr}`);
  const rest = lines.slice(at + 1);
  assert.ok(rest.every((l) => l.startsWith('  ')), `only details after the error line: ${JSON.stringify(stderr)}`);
  return [lines[at]!, ...rest].join('\n');
}

function run(cmd: string, args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(cmd, args, { maxBuffer: 16 * 1024 * 1024, timeout: 120_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr });
    });
  });
}

describe('sigstore signatures from registries', () => {
  let work: string;
  let a: TestRegistry;
  let b: TestRegistry;
  let app: BuiltImage;
  let other: BuiltImage;
  let digest: string;
  let otherDigest: string;
  let ca: FulcioLikeCa;
  let otherCa: FulcioLikeCa;
  let rekor: TestRekor;
  let otherRekor: TestRekor;
  let cosignKey: TestKey;
  let strangerKey: TestKey;
  let root: string;
  let policy: string;
  let regd: string;
  let regdOff: string;
  let host: TestHost | undefined;
  const files = new Map<string, string>();

  const file = async (name: string, text: string) => {
    const p = path.join(work, name);
    await writeFile(p, text);
    files.set(name, p);
    return p;
  };
  /** A policy: reject by default; A/sig keyless (test CA, email, issuer, Rekor), A/keyed a cosign key, B/mirror keyless remapped to A/sig. */
  const writePolicy = async (name: string, email = TEST_EMAIL) => {
    const keyless = { fulcio: { caPath: files.get('fulcio.pem')!, oidcIssuer: TEST_OIDC_ISSUER, subjectEmail: email }, rekorPublicKeyPath: files.get('rekor.pub')! };
    const p = path.join(work, name);
    await writeFile(
      p,
      JSON.stringify({
        default: [{ type: 'reject' }],
        transports: {
          docker: {
            [`${a.host}/sig`]: [{ type: 'sigstoreSigned', ...keyless, signedIdentity: { type: 'matchRepository' } }],
            [`${a.host}/keyed`]: [{ type: 'sigstoreSigned', keyPath: files.get('cosign.pub')!, signedIdentity: { type: 'matchRepository' } }],
            // berth sign --sigstore-key's key (made by berth trust keygen in the test that uses it)
            [`${a.host}/berth`]: [{ type: 'sigstoreSigned', keyPath: path.join(work, 'berth-cosign.pub'), signedIdentity: { type: 'matchRepository' } }],
            [`${b.host}/berthcopy`]: [{ type: 'sigstoreSigned', keyPath: path.join(work, 'berth-cosign.pub'), signedIdentity: { type: 'remapIdentity', prefix: `${b.host}/berthcopy`, signedPrefix: `${a.host}/berth` } }],
            // The copy at B carries signatures that name A's repository: remapIdentity maps B/mirror to A/sig for the check.
            [`${b.host}/mirror`]: [{ type: 'sigstoreSigned', ...keyless, signedIdentity: { type: 'remapIdentity', prefix: `${b.host}/mirror`, signedPrefix: `${a.host}/sig` } }],
          },
        },
      }),
    );
    return p;
  };
  const berth = (args: string[], opts: { root?: string; policy?: string; regd?: string } = {}) =>
    run(process.execPath, [BERTH, '--root', opts.root ?? root, ...args, '--policy', opts.policy ?? policy, '--registries.d', opts.regd ?? regd, '--tls-verify=false']);
  const inspect = (args: string[], at = root) => run(process.execPath, [BERTH, '--root', at, 'inspect', ...args]);

  /** A keyless attachment for `reference` over `manifestDigest`, as cosign sign makes it. */
  const keyless = (o: { reference: string; manifestDigest?: string; emails?: string[]; uris?: string[]; issuer?: string; by?: FulcioLikeCa; at?: number; setTime?: number; r?: TestRekor }) => {
    const by = o.by ?? ca;
    const key = makeKey('ecdsa-p256');
    const at = o.at ?? Date.now() - 60_000;
    const cert = by.leaf({ at, key, emails: o.emails ?? (o.uris === undefined ? [TEST_EMAIL] : []), ...(o.uris === undefined ? {} : { uris: o.uris }), ...(o.issuer === undefined ? {} : { oidcIssuer: o.issuer }) });
    return cosignAttachment({ manifestDigest: (o.manifestDigest ?? digest) as Digest, reference: o.reference, key, cert, chain: [by.intermediate, by.root], rekor: o.r ?? rekor, integratedTime: o.setTime ?? Math.floor(at / 1000) + 30 });
  };

  /** The image's layer and config blob requests for `repo` among `requests`. */
  const imageBlobRequests = (requests: string[], repo: string) =>
    requests.filter((r) => [app.configDigest, ...app.layers.map((l) => l.digest)].some((d) => r.startsWith(`GET /v2/${repo}/blobs/${d} `)));

  /** Runs `berth pull` of A/REPO:1 and returns the command's result and the requests A served meanwhile. */
  const pullFromA = async (repo: string, opts: { policy?: string; regd?: string } = {}) => {
    const from = (await a.requests()).length;
    const r = await berth(['pull', `docker://${a.host}/${repo}:1`], opts);
    return { ...r, requests: (await a.requests()).slice(from) };
  };

  before(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'berth-trust-sigstore-'));
    root = path.join(work, 'root');
    [a, b] = await Promise.all([TestRegistry.start({ accessLog: true }), TestRegistry.start({ accessLog: true })]);
    [ca, otherCa] = [makeFulcioLikeCa(), makeFulcioLikeCa('other fulcio')];
    [rekor, otherRekor] = [makeRekor(), makeRekor()];
    [cosignKey, strangerKey] = [makeKey('ecdsa-p256'), makeKey('ecdsa-p256')];
    // As sigstore's Fulcio CA file: the intermediate and the root (bundles carry only the leaf).
    await file('fulcio.pem', ca.intermediate.pem + ca.root.pem);
    await file('rekor.pub', rekor.key.publicPem);
    await file('cosign.pub', cosignKey.publicPem);
    policy = await writePolicy('policy.json');
    regd = path.join(work, 'registries.d');
    regdOff = path.join(work, 'registries.d-off');
    await mkdir(regd);
    await mkdir(regdOff);
    // Both registries; skopeo reads the same directory.
    await writeFile(path.join(regd, 'sigstore.yaml'), 'default-docker:\n  use-sigstore-attachments: true\n');
    await writeFile(path.join(regdOff, 'none.yaml'), 'default-docker:\n  use-sigstore-attachments: false\n');

    const layout = path.join(work, 'layout');
    app = await buildImage(layout, 'app', { busybox: false, layers: [[{ path: 'etc/motd', content: `sigstore ${process.pid}\n` }]], config: { Cmd: ['/bin/true'] } });
    other = await buildImage(layout, 'other', { busybox: false, layers: [[{ path: 'etc/motd', content: 'another image\n' }]], config: { Cmd: ['/bin/true'] } });
    const repos = ['sig/good', 'sig/tampered', 'sig/moved', 'sig/otherrepo', 'sig/wrongemail', 'sig/wronguri', 'sig/wrongissuer', 'sig/expired', 'sig/noset', 'sig/forgedset', 'sig/untrustedca', 'sig/none', 'keyed/good', 'keyed/wrongkey', 'keyed/tampered', 'sig/bundle', 'sig/bundleforged', 'berth/app'];
    const digests = await Promise.all(repos.map((r) => pushImage(app, a.host, r, '1')));
    digest = digests[0]!;
    assert.ok(digests.every((d) => d === digest), 'the same manifest in every repository');
    otherDigest = await pushImage(other, a.host, 'sig/moved', 'other');

    const repo = (r: string) => `${a.host}/${r}`;
    const sigs: Record<string, UntrustedCosignAttachment[]> = {
      'sig/good': [keyless({ reference: repo('sig/good') }).attachment],
      'sig/tampered': [{ ...keyless({ reference: repo('sig/tampered') }).attachment, payload: Buffer.from(keyless({ reference: repo('sig/tampered') }).payload.toString().replace('{', '{ ')) }],
      // a valid signature of another image of the same repository, attached to this one
      'sig/moved': [keyless({ reference: repo('sig/moved'), manifestDigest: otherDigest }).attachment],
      'sig/otherrepo': [keyless({ reference: repo('sig/elsewhere') }).attachment],
      'sig/wrongemail': [keyless({ reference: repo('sig/wrongemail'), emails: ['mallory@berth.test'] }).attachment],
      'sig/wronguri': [keyless({ reference: repo('sig/wronguri'), uris: [TEST_WORKFLOW_URI] }).attachment],
      'sig/wrongissuer': [keyless({ reference: repo('sig/wrongissuer'), issuer: 'https://accounts.evil.test' }).attachment],
      'sig/expired': [keyless({ reference: repo('sig/expired'), at: Date.now() - 3600_000, setTime: Math.floor((Date.now() - 3600_000) / 1000) + 11 * 60 }).attachment],
      'sig/noset': [(({ rekorBundle: _drop, ...rest }) => rest)(keyless({ reference: repo('sig/noset') }).attachment)],
      'sig/forgedset': [(() => {
        const made = keyless({ reference: repo('sig/forgedset') });
        return { ...made.attachment, rekorBundle: JSON.stringify({ SignedEntryTimestamp: otherRekor.setSignature(made.entry!).toString('base64'), Payload: made.entry }) };
      })()],
      'sig/untrustedca': [keyless({ reference: repo('sig/untrustedca'), by: otherCa }).attachment],
      'keyed/good': [cosignAttachment({ manifestDigest: digest as Digest, reference: repo('keyed/good'), key: cosignKey }).attachment],
      'keyed/wrongkey': [cosignAttachment({ manifestDigest: digest as Digest, reference: repo('keyed/wrongkey'), key: strangerKey }).attachment],
      'keyed/tampered': [(() => {
        const made = cosignAttachment({ manifestDigest: digest as Digest, reference: repo('keyed/tampered'), key: cosignKey });
        return { ...made.attachment, payload: Buffer.from(made.payload.toString().replace('{', '{ ')) };
      })()],
    };
    for (const [r, list] of Object.entries(sigs)) await pushCosignAttachments(a.url, r, digest, list);

    // cosign v3: Sigstore bundles as referrers, through the tag fallback (this registry has no referrers API)
    const manifestSize = (await stat(path.join(app.layout, 'blobs', 'sha256', digest.slice(7)))).size;
    const bundle = (o: { statement?: object } = {}) => {
      const key = makeKey('ecdsa-p256');
      const at = Date.now() - 60_000;
      return sigstoreBundle({ manifestDigest: digest as Digest, key, cert: ca.leaf({ at, key, emails: [TEST_EMAIL] }), rekor, integratedTime: Math.floor(at / 1000) + 30, ...o });
    };
    await pushBundleReferrers(a.url, 'sig/bundle', digest, manifestSize, [bundle().bytes]);
    // forged: the statement swapped for one naming another image, the signature and Rekor entry left as they were
    const forged = structuredClone(bundle().json) as { dsseEnvelope: { payload: string } };
    forged.dsseEnvelope.payload = Buffer.from(JSON.stringify(statementFor(otherDigest as Digest))).toString('base64');
    await pushBundleReferrers(a.url, 'sig/bundleforged', digest, manifestSize, [Buffer.from(JSON.stringify(forged))]);
  });

  after(async () => {
    await host?.stop();
    await host?.assertClean();
    await Promise.all([a?.stop(), b?.stop()]);
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('accepts a keyless signature from the registry, keeps it with the image, and inspect shows it', async () => {
    const r = await pullFromA('sig/good');
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.requests.includes(`GET /v2/sig/good/manifests/${digest.replace(':', '-')}.sig 200`), `the attachment was read:\n${r.requests.join('\n')}`);
    assert.equal(imageBlobRequests(r.requests, 'sig/good').length, 1 + app.layers.length, 'config and layers were fetched once accepted');
    const shown = await inspect([`docker://${a.host}/sig/good:1`]);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /^Sigstore: +1 \(cosign keyless \+rekor\)$/m);
    const json = JSON.parse((await inspect(['--json', `docker://${a.host}/sig/good:1`])).stdout) as { sigstoreSignatures: number; sigstore: { kind: string; keyless: boolean; rekor: boolean }[] };
    assert.equal(json.sigstoreSignatures, 1);
    assert.deepEqual(json.sigstore.map((s) => [s.kind, s.keyless, s.rekor]), [['cosign', true, true]]);
  });

  it('accepts a cosign v3 Sigstore bundle found through the referrers tag fallback', async () => {
    const r = await pullFromA('sig/bundle');
    assert.equal(r.code, 0, r.stderr);
    const hex = digest.slice(7);
    // the referrers API first (distribution 2.8 has none: 404), then the sha256-HEX tag's index, the bundle manifest and blob
    const api = r.requests.findIndex((q) => q.startsWith(`GET /v2/sig/bundle/referrers/sha256:${hex}?artifactType=application%2Fvnd.dev.sigstore.bundle.v0.3%2Bjson 404`));
    const tag = r.requests.indexOf(`GET /v2/sig/bundle/manifests/sha256-${hex} 200`);
    assert.ok(api >= 0 && tag > api, r.requests.join('\n'));
    const shown = await inspect([`docker://${a.host}/sig/bundle:1`]);
    assert.match(shown.stdout, /^Sigstore: +\d+ \(.*bundle.*\)$/m);
  });

  it('accepts a signature by a cosign key', async () => {
    const r = await pullFromA('keyed/good');
    assert.equal(r.code, 0, r.stderr);
  });

  const refusals: [string, string, RegExp][] = [
    ['wrong key', 'keyed/wrongkey', /does not verify with the policy's key/],
    ['tampered payload (key)', 'keyed/tampered', /does not verify with the policy's key/],
    ['tampered payload (keyless)', 'sig/tampered', /the Rekor entry is for another payload|does not verify/],
    ['signature moved to another digest', 'sig/moved', /for manifest sha256:[0-9a-f]{64}, but this image's manifest is sha256:/],
    ['other repository', 'sig/otherrepo', /claims identity .*\/sig\/elsewhere.*\(matchRepository\)/],
    ['wrong email', 'sig/wrongemail', /the certificate is for "mallory@berth.test", fulcio.subjectEmail requires "builder@berth.test"/],
    ['wrong URI', 'sig/wronguri', /the certificate is for "https:\/\/github.com\/berth-test\/app\/.*", fulcio.subjectEmail requires/],
    ['wrong issuer', 'sig/wrongissuer', /OIDC issuer is "https:\/\/accounts.evil.test", fulcio.oidcIssuer requires "https:\/\/oidc.berth.test"/],
    ['certificate expired at the SET\'s time', 'sig/expired', /the certificate .* is not valid at /],
    ['missing SET', 'sig/noset', /no Rekor SET/],
    ['forged SET', 'sig/forgedset', /the Rekor SET signature does not verify/],
    ['untrusted CA', 'sig/untrustedca', /not a trusted CA/],
    ['no signature at all', 'sig/none', /has no sigstore signatures/],
    ['forged Sigstore bundle', 'sig/bundleforged', /sigstore bundle #1: .*the Rekor entry is for another payload/],
  ];
  for (const [what, repo, reason] of refusals) {
    it(`refuses ${what} in one line (exit 8), and no layer or config is fetched`, async () => {
      const r = await pullFromA(repo);
      assert.equal(r.code, 8, `exit 8 (UNTRUSTED): ${r.stderr}`);
      const text = errorText(r.stderr);
      assert.equal(text.split('\n').length, 1, `one line (one signature, no details): ${text}`);
      assert.match(text, /^berth: error: docker:\/\/.* is rejected: /);
      assert.match(text, reason);
      // The registry's own log: the manifest and the attachment were read, nothing the manifest names.
      assert.ok(r.requests.some((q) => q.startsWith(`GET /v2/${repo}/manifests/${digest.replace(':', '-')}.sig `)), `the attachment was asked for:\n${r.requests.join('\n')}`);
      if (repo.includes('bundle')) assert.ok(r.requests.includes(`GET /v2/${repo}/manifests/${digest.replace(':', '-')} 200`), 'the bundle came through the tag fallback');
      assert.deepEqual(imageBlobRequests(r.requests, repo), [], 'no layer or config blob was requested');
    });
  }

  it('does not look in the registry when registries.d does not say use-sigstore-attachments (and refuses)', async () => {
    const r = await pullFromA('sig/good', { regd: regdOff });
    assert.equal(r.code, 8, r.stderr);
    assert.match(errorText(r.stderr), /^berth: error: .* is rejected: .*has no sigstore signatures/);
    assert.deepEqual(r.requests.filter((q) => q.includes('.sig') || q.includes('/blobs/')), [], 'no attachment or blob was asked for');
  });

  it('re-checks the kept signatures from the store (no registry), and carries them in save/load bundles', async () => {
    const ref = `docker://${a.host}/sig/good:1`;
    const bundle = path.join(work, 'good.tar');
    let from = (await a.requests()).length;
    const saved = await berth(['save', ref, '-o', bundle]);
    assert.equal(saved.code, 0, saved.stderr);
    // The same manifest was pulled from several repositories here: its record keeps every signature that came with it
    // (each is checked against the reference it is used under), and the bundle carries them all.
    const kept = (JSON.parse((await inspect(['--json', ref])).stdout) as { sigstoreSignatures: number }).sigstoreSignatures;
    assert.ok(kept >= 1);
    assert.match(saved.stdout, new RegExp(`, ${kept} sigstore$`, 'm'));
    // Today's policy says another email: the store's copy is refused by the kept signature, offline.
    const strict = await writePolicy('policy-other-email.json', 'someone-else@berth.test');
    const refused = await berth(['save', ref, '-o', path.join(work, 'refused.tar')], { policy: strict });
    assert.equal(refused.code, 8, refused.stderr);
    assert.match(errorText(refused.stderr), /^berth: error: .* is rejected: [\s\S]*fulcio.subjectEmail requires "someone-else@berth.test"/);
    assert.deepEqual((await a.requests()).slice(from).filter((q) => q.includes('/manifests/') && q.includes('sig/good')), [], 'the store was used, not the registry');

    const tar = await run('tar', ['-tf', bundle]);
    assert.match(tar.stdout, new RegExp(`^berth/signatures/${digest.slice(7)}/sigstore\\.json$`, 'm'));
    // load into a fresh store: accepted with the bundle's signature; refused under the stricter policy
    from = (await a.requests()).length;
    const loaded = await berth(['load', bundle], { root: path.join(work, 'root-load') });
    assert.equal(loaded.code, 0, loaded.stderr);
    assert.match(loaded.stdout, new RegExp(`${kept} sigstore; accepted by .*sigstoreSigned`));
    const shown = await inspect([ref], path.join(work, 'root-load'));
    assert.match(shown.stdout, new RegExp(`^Sigstore: +${kept} \\(cosign keyless \\+rekor`, 'm'));
    const notLoaded = await berth(['load', bundle], { root: path.join(work, 'root-load-strict'), policy: strict });
    assert.equal(notLoaded.code, 8, notLoaded.stderr);
    assert.match(errorText(notLoaded.stderr), /^berth: error: .* is rejected: [\s\S]*fulcio.subjectEmail requires/);
    assert.deepEqual((await a.requests()).slice(from), [], 'load needs no registry');
  });

  it('a signature made by berth sign --sigstore-key survives skopeo copy to another registry and still verifies', async () => {
    const prefix = path.join(work, 'berth-cosign');
    const pass = await file('cosign.pass', 'test password\n');
    const made = await run(process.execPath, [BERTH, 'trust', 'keygen', prefix, '--passphrase-file', pass]);
    assert.equal(made.code, 0, made.stderr);
    const signed = await run(process.execPath, [BERTH, '--root', root, 'sign', '--sigstore-key', `${prefix}.key`, '--passphrase-file', pass, '--tls-verify=false', `docker://${a.host}/berth/app:1`]);
    assert.equal(signed.code, 0, signed.stderr);
    const atA = await pullFromA('berth/app');
    assert.equal(atA.code, 0, atA.stderr);
    await skopeoCopy(`docker://${a.host}/berth/app:1`, `docker://${b.host}/berthcopy/app:1`, ['--registries.d', regd, '--src-tls-verify=false', '--dest-tls-verify=false']);
    const from = (await b.requests()).length;
    // berth signs the reference it was given (with its tag): remapIdentity accepts the copy by tag
    const r = await berth(['pull', `docker://${b.host}/berthcopy/app:1`]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok((await b.requests()).slice(from).includes(`GET /v2/berthcopy/app/manifests/${digest.replace(':', '-')}.sig 200`));
  });

  it('berth install (real systemd): pulls with the registry\'s signatures, then re-checks the kept ones from the store', async () => {
    host = await TestHost.start();
    const hostRoot = path.join(work, 'root-host');
    const install = (name: string, policyFile: string) =>
      host!.exec(process.execPath, [BERTH, '--root', hostRoot, 'install', '--system', '--no-start', '--policy', policyFile, '--registries.d', regd, '--tls-verify=false', '--name', name, `docker://${a.host}/sig/good:1`], { timeoutMs: 120_000 });
    let from = (await a.requests()).length;
    const first = await install('signed', policy);
    assert.equal(first.code, 0, first.stderr);
    let requests = (await a.requests()).slice(from);
    assert.ok(requests.includes(`GET /v2/sig/good/manifests/${digest.replace(':', '-')}.sig 200`), requests.join('\n'));
    assert.equal(await host.unitProperty('signed.service', 'LoadState'), 'loaded');

    from = (await a.requests()).length;
    const strict = await writePolicy('policy-install-strict.json', 'someone-else@berth.test');
    const again = await install('signed-again', strict);
    assert.equal(again.code, 8, again.stderr);
    assert.match(again.stderr, /Using \S+\/sig\/good:1 from the store/);
    assert.match(errorText(again.stderr), /is rejected: [\s\S]*fulcio.subjectEmail requires "someone-else@berth.test"/);
    requests = (await a.requests()).slice(from);
    assert.deepEqual(requests, [], 'the registry was not asked');
    assert.equal(await host.unitProperty('signed-again.service', 'LoadState'), 'not-found', 'nothing was installed');

    const un = await host.exec(process.execPath, [BERTH, '--root', hostRoot, 'uninstall', 'signed'], { timeoutMs: 60_000 });
    assert.equal(un.code, 0, un.stderr);
  });

  it('skopeo copies the attachments to another registry (use-sigstore-attachments), where they still verify', async () => {
    await skopeoCopy(`docker://${a.host}/sig/good:1`, `docker://${b.host}/mirror/good:1`, ['--registries.d', regd, '--src-tls-verify=false', '--dest-tls-verify=false']);
    const sigTag = `${digest.replace(':', '-')}.sig`;
    assert.ok((await b.requests()).some((q) => q.startsWith(`PUT /v2/mirror/good/manifests/${sigTag} 201`)), 'skopeo wrote the .sig tag at B');
    const from = (await b.requests()).length;
    // remapIdentity: the copy is checked as A/sig/good, the identity its signature names (by digest: cosign signs the repository, not a tag)
    const r = await berth(['pull', `docker://${b.host}/mirror/good@${digest}`]);
    assert.equal(r.code, 0, r.stderr);
    const requests = (await b.requests()).slice(from);
    assert.ok(requests.includes(`GET /v2/mirror/good/manifests/${sigTag} 200`), requests.join('\n'));
    // By tag, remapIdentity (matchRepoDigestOrExact semantics) wants the tag signed: cosign's repository-only identity is not enough.
    const byTag = await berth(['pull', `docker://${b.host}/mirror/good:1`]);
    assert.equal(byTag.code, 8, byTag.stderr);
    assert.match(errorText(byTag.stderr), /^berth: error: .* is rejected: .*claims identity .*\/sig\/good, expected .*\/sig\/good:1 \(remapIdentity\)/);
  });
});
