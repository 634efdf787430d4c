/**
 * Signature interop with the real tools, both ways, for gpg RSA and ed25519 keys:
 *  - skopeo copy --sign-by (gpg keyring in a temp GNUPGHOME) -> berth's checkTrust accepts;
 *  - berth sign -> skopeo copy --policy P --registries.d D verifies and copies.
 * The registry is a local docker-registry; the look-aside store is a file:// dir.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isBerthError } from '../../src/errors.ts';
import { digestOf, encodedOf } from '../../src/image/digest.ts';
import { parseImageReference } from '../../src/transport/index.ts';
import { silentReporter } from '../../src/ops/context.ts';
import { Paths } from '../../src/deploy/paths.ts';
import { sign } from '../../src/ops/sign.ts';
import { checkTrust } from '../../src/trust/index.ts';
import { openImageSource } from '../../src/transport/index.ts';
import { GpgHome, type GpgKeyAlgo } from '../fixtures/gpg.ts';
import { buildImage, pushImage, type BuiltImage } from '../fixtures/oci-image.ts';
import { TestRegistry } from '../harness/registry.ts';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function skopeo(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<Run> {
  return new Promise((resolve) => {
    execFile('skopeo', args, { env, maxBuffer: 16 * 1024 * 1024, timeout: 120_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
      resolve({ code, stdout, stderr });
    });
  });
}

describe('signature interop with skopeo and gpg', () => {
  let work: string;
  let registry: TestRegistry;
  let home: GpgHome;
  let image: BuiltImage;
  let registriesDir: string;
  let sigstore: string;
  const keys = new Map<GpgKeyAlgo, { fpr: string; pub: string; secret: string }>();
  let strangerPub: string;

  /** A policy: reject by default; the scope HOST/trust needs a signature by `pubFile`. */
  const writePolicy = async (name: string, pubFile: string): Promise<string> => {
    const file = path.join(work, `${name}.json`);
    await writeFile(
      file,
      JSON.stringify({
        default: [{ type: 'reject' }],
        transports: { docker: { [`${registry.host}/trust`]: [{ type: 'signedBy', keyType: 'GPGKeys', keyPath: pubFile }] } },
      }),
    );
    return file;
  };

  const manifestOf = async (ref: string): Promise<Buffer> => {
    const source = await openImageSource(parseImageReference(ref), { tlsVerify: false });
    try {
      return (await source.getManifest()).untrustedBytes;
    } finally {
      await source.close();
    }
  };

  before(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'berth-trust-e2e-'));
    [registry, home] = await Promise.all([TestRegistry.start(), GpgHome.create()]);
    image = await buildImage(path.join(work, 'layout'), 'app', { busybox: false, layers: [[{ path: 'etc/motd', content: 'signed\n' }]], config: { Cmd: ['/bin/true'] } });
    sigstore = path.join(work, 'sigstore');
    registriesDir = path.join(work, 'registries.d');
    await mkdir(registriesDir);
    await writeFile(
      path.join(registriesDir, 'test.yaml'),
      `docker:\n  ${registry.host}:\n    lookaside: file://${sigstore}\n    lookaside-staging: file://${sigstore}\n`,
    );
    for (const algo of ['rsa2048', 'ed25519'] as const) {
      const fpr = await home.generateKey(`berth test ${algo}`, `${algo}@berth.example`, algo);
      const pub = path.join(work, `${algo}.gpg`);
      const secret = path.join(work, `${algo}.key`);
      await writeFile(pub, await home.exportPublic([fpr], algo === 'ed25519')); // binary and armored keyrings
      await writeFile(secret, await home.exportSecret(fpr, algo === 'rsa2048'));
      keys.set(algo, { fpr, pub, secret });
    }
    const stranger = await GpgHome.create();
    try {
      strangerPub = path.join(work, 'stranger.gpg');
      await writeFile(strangerPub, await stranger.exportPublic([await stranger.generateKey('stranger', 'stranger@berth.example', 'ed25519')]));
    } finally {
      await stranger.cleanup();
    }
  });

  after(async () => {
    await registry?.stop();
    await home?.cleanup();
    if (work) await rm(work, { recursive: true, force: true });
  });

  for (const algo of ['rsa2048', 'ed25519'] as const) {
    it(`${algo}: an image signed by skopeo copy --sign-by is accepted by checkTrust`, { timeout: 120_000 }, async () => {
      const { fpr, pub } = keys.get(algo)!;
      const ref = `docker://${registry.host}/trust/skopeo-${algo}:1`;
      const r = await skopeo(
        ['copy', '--insecure-policy', '--dest-tls-verify=false', '--registries.d', registriesDir, '--sign-by', fpr, `oci:${image.layout}:${image.tag}`, ref],
        home.env(),
      );
      assert.equal(r.code, 0, `skopeo copy --sign-by: ${r.stderr}`);
      const manifest = await manifestOf(ref);
      const sigDir = path.join(sigstore, `trust/skopeo-${algo}@sha256=${encodedOf(digestOf(manifest))}`);
      assert.deepEqual(await readdir(sigDir), ['signature-1'], 'skopeo wrote where berth looks');

      const verdict = await checkTrust(parseImageReference(ref), manifest, { policyPath: await writePolicy(`accept-${algo}`, pub), registriesDir });
      assert.equal(verdict.verifiedBy, fpr);
      assert.equal(verdict.signatures.length, 1);

      await assert.rejects(
        checkTrust(parseImageReference(ref), manifest, { policyPath: await writePolicy(`stranger-${algo}`, strangerPub), registriesDir }),
        (e: unknown) => isBerthError(e) && e.code === 'UNTRUSTED' && e.details.some((d) => /signature-1: signed by key .*does not trust/.test(d)),
      );
    });

    it(`${algo}: an image signed by berth sign is accepted by skopeo copy --policy`, { timeout: 120_000 }, async () => {
      const { fpr, pub, secret } = keys.get(algo)!;
      const ref = `docker://${registry.host}/trust/berth-${algo}:1`;
      await pushImage(image, registry.host, `trust/berth-${algo}`, '1');
      const policyPath = await writePolicy(`skopeo-${algo}`, pub);
      const ctx = { paths: new Paths(path.join(work, 'root')), report: silentReporter };

      const result = await sign(ctx, { image: ref, keyFile: secret, registriesDir, tlsVerify: false, policyPath });
      assert.equal(result.fingerprint, fpr);
      assert.equal(result.identity, `${registry.host}/trust/berth-${algo}:1`);
      assert.equal(result.policy?.accepted, true, result.policy?.message);
      assert.match(result.signature, /signature-1$/);

      const dest = path.join(work, `copy-${algo}`);
      const r = await skopeo(['copy', '--policy', policyPath, '--registries.d', registriesDir, '--src-tls-verify=false', ref, `dir:${dest}`]);
      assert.equal(r.code, 0, `skopeo copy --policy must accept berth's signature: ${r.stderr}`);

      // Sanity: the same policy makes skopeo refuse an unsigned image in that scope.
      await pushImage(image, registry.host, `trust/unsigned-${algo}`, '1');
      const unsigned = await skopeo(['copy', '--policy', policyPath, '--registries.d', registriesDir, '--src-tls-verify=false', `docker://${registry.host}/trust/unsigned-${algo}:1`, `dir:${dest}-unsigned`]);
      assert.notEqual(unsigned.code, 0, 'skopeo must refuse the unsigned image');

      // A second signature goes to signature-2, and skopeo still accepts.
      const second = await sign(ctx, { image: ref, keyFile: secret, registriesDir, tlsVerify: false });
      assert.match(second.signature, /signature-2$/);
    });
  }

  it('berth sign with a passphrase-protected key and another identity', { timeout: 120_000 }, async () => {
    const fpr = await home.generateKey('berth protected', 'protected@berth.example', 'ed25519', 'correct horse');
    const secret = path.join(work, 'protected.key');
    const pub = path.join(work, 'protected.gpg');
    await writeFile(secret, await home.exportSecret(fpr, true, 'correct horse'));
    await writeFile(pub, await home.exportPublic([fpr]));
    const passFile = path.join(work, 'pass');
    await writeFile(passFile, 'correct horse\n');
    const ref = `docker://${registry.host}/trust/protected:1`;
    await pushImage(image, registry.host, 'trust/protected', '1');
    const ctx = { paths: new Paths(path.join(work, 'root')), report: silentReporter };

    await assert.rejects(sign(ctx, { image: ref, keyFile: secret, registriesDir, tlsVerify: false }), (e: unknown) => isBerthError(e) && e.code === 'KEY_INVALID' && /passphrase/.test(e.message));
    const r = await sign(ctx, { image: ref, keyFile: secret, passphraseFile: passFile, identity: 'vendor.example.com/app:1', registriesDir, tlsVerify: false });
    assert.equal(r.identity, 'vendor.example.com/app:1');

    // skopeo accepts it only under a policy that expects that identity.
    const exact = path.join(work, 'exact.json');
    await writeFile(
      exact,
      JSON.stringify({
        default: [{ type: 'reject' }],
        transports: { docker: { [`${registry.host}/trust/protected`]: [{ type: 'signedBy', keyType: 'GPGKeys', keyPath: pub, signedIdentity: { type: 'exactReference', dockerReference: 'vendor.example.com/app:1' } }] } },
      }),
    );
    const ok = await skopeo(['copy', '--policy', exact, '--registries.d', registriesDir, '--src-tls-verify=false', ref, `dir:${path.join(work, 'copy-protected')}`]);
    assert.equal(ok.code, 0, ok.stderr);
    const plain = await skopeo(['copy', '--policy', await writePolicy('protected-plain', pub), '--registries.d', registriesDir, '--src-tls-verify=false', ref, `dir:${path.join(work, 'copy-protected-2')}`]);
    assert.notEqual(plain.code, 0, 'the identity does not match the pulled reference');
    await assert.rejects(
      checkTrust(parseImageReference(ref), await manifestOf(ref), { policyPath: await writePolicy('protected-berth', pub), registriesDir }),
      (e: unknown) => isBerthError(e) && e.code === 'UNTRUSTED' && e.details.some((d) => /claims identity vendor.example.com\/app:1/.test(d)),
    );
    assert.equal((await checkTrust(parseImageReference(ref), await manifestOf(ref), { policyPath: exact, registriesDir })).verifiedBy, fpr);
  });
});
