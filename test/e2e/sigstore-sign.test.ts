/**
 * berth sign --sigstore-key against a real registry (Debian's docker-registry):
 *  - two keys (one from berth trust keygen, one encrypted outside berth with
 *    PyNaCl) sign the same image: the sha256-HEX.sig manifest keeps both, in
 *    cosign's layout, and each signature verifies with openssl over its payload;
 *  - signing again with the same key pushes nothing;
 *  - skopeo (containers/image) copies the attachments to another
 *    repository, where they still verify;
 *  - a wrong password is one line with its own code, and nothing is pushed.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { digestOf } from '../../src/image/digest.ts';
import { ANNOTATION_SIGNATURE, COSIGN_SIMPLESIGNING_MEDIA_TYPE, cosignSignatureTag } from '../../src/image/sigstore.ts';
import { buildImage, pushImage } from '../fixtures/oci-image.ts';
import { TestRegistry } from '../harness/registry.ts';
import { TokenServer } from '../harness/token-server.ts';

const BERTH = fileURLToPath(new URL('../../bin/berth.js', import.meta.url));
const PY = fileURLToPath(new URL('../fixtures/cosign-key.py', import.meta.url));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function exec(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}, cwd?: string): Promise<Run> {
  return new Promise((resolve) => {
    execFile(cmd, args, { env: { ...process.env, ...env }, cwd, maxBuffer: 16 * 1024 * 1024, timeout: 180_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
      resolve({ code, stdout, stderr });
    });
  });
}

interface OciManifest {
  schemaVersion: number;
  mediaType: string;
  config: { mediaType: string; size: number; digest: string };
  layers: { mediaType: string; size: number; digest: string; annotations: Record<string, string> }[];
}

describe('berth sign --sigstore-key', () => {
  let work: string;
  let registry: TestRegistry;
  let digest: string;
  let image: string;
  let keyA: string;
  let pubA: string;
  let keyB: string;
  let pubB: string;
  
  const berth = (args: string[], env: NodeJS.ProcessEnv = {}) => exec(process.execPath, [BERTH, ...args], { BERTH_ROOT: path.join(work, 'root'), ...env }, work);
  const sign = (key: string, password: string, extra: string[] = []) =>
    berth(['sign', '--sigstore-key', key, '--tls-verify=false', '--json', ...extra, `docker://${image}`], { COSIGN_PASSWORD: password });

  const get = async (p: string): Promise<Buffer> => {
    const res = await fetch(`${registry.url}${p}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
    assert.equal(res.status, 200, `GET ${p}`);
    return Buffer.from(await res.arrayBuffer());
  };
  const sigManifest = async (repo: string): Promise<{ bytes: Buffer; manifest: OciManifest }> => {
    const bytes = await get(`/v2/${repo}/manifests/${cosignSignatureTag(digest)}`);
    return { bytes, manifest: JSON.parse(bytes.toString()) as OciManifest };
  };
  /** Which of the public keys verify the layer's signature over its blob (openssl, not berth). */
  const verifiers = async (repo: string, layer: OciManifest['layers'][number], pubs: string[]): Promise<string[]> => {
    const blob = await get(`/v2/${repo}/blobs/${layer.digest}`);
    assert.equal(digestOf(blob), layer.digest);
    const payloadFile = path.join(work, 'payload');
    const sigFile = path.join(work, 'sig');
    await writeFile(payloadFile, blob);
    await writeFile(sigFile, Buffer.from(layer.annotations[ANNOTATION_SIGNATURE]!, 'base64'));
    const ok: string[] = [];
    for (const pub of pubs) {
      const r = await exec('openssl', ['dgst', '-sha256', '-verify', pub, '-signature', sigFile, payloadFile]);
      if (r.code === 0 && /Verified OK/.test(r.stdout)) ok.push(pub);
    }
    return ok;
  };

  before(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'berth-sigstore-sign-'));
    registry = await TestRegistry.start();
    const built = await buildImage(path.join(work, 'layout'), 'app', { busybox: false, layers: [[{ path: 'etc/motd', content: 'cosign\n' }]], config: { Cmd: ['/bin/true'] } });
    digest = await pushImage(built, registry.host, 'app', '1');
    image = `${registry.host}/app:1`;
    // Key A: berth trust keygen. Key B: made with openssl's key and PyNaCl, outside berth.
    const r = await berth(['trust', 'keygen', 'a'], { COSIGN_PASSWORD: 'password A' });
    assert.equal(r.code, 0, r.stderr);
    keyA = path.join(work, 'a.key');
    pubA = path.join(work, 'a.pub');
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    await writeFile(path.join(work, 'b.der'), privateKey.export({ type: 'pkcs8', format: 'der' }));
    keyB = path.join(work, 'b.key');
    pubB = path.join(work, 'b.pub');
    await writeFile(keyB, execFileSync('/usr/bin/python3', [PY, 'encrypt', path.join(work, 'b.der'), 'password B']));
    await writeFile(pubB, createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }));
  });

  after(async () => {
    await registry?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('keygen writes an encrypted 0600 key and refuses to overwrite it', async () => {
    assert.equal((await stat(keyA)).mode & 0o777, 0o600);
    assert.match(await readFile(keyA, 'utf8'), /^-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n/);
    assert.match(await readFile(pubA, 'utf8'), /^-----BEGIN PUBLIC KEY-----\n/);
    const again = await berth(['trust', 'keygen', 'a'], { COSIGN_PASSWORD: 'x' });
    assert.equal(again.code, 2);
    assert.match(again.stderr, /^berth: error: .*a\.key already exists/);
  });

  it('a wrong password is one line, exit 2, code KEY_PASSWORD, and pushes nothing', async () => {
    const r = await sign(keyA, 'not it');
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /wrong password/);
    assert.equal(JSON.parse(r.stdout).error.code, 'KEY_PASSWORD');
    const res = await fetch(`${registry.url}/v2/app/manifests/${cosignSignatureTag(digest)}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
    assert.equal(res.status, 404);
  });

  it('two keys sign: both signatures are kept in cosign\'s layout and verify with openssl; signing again pushes nothing', async () => {
    const first = await sign(keyA, 'password A');
    assert.equal(first.code, 0, first.stderr);
    const r1 = JSON.parse(first.stdout);
    assert.equal(r1.added, true);
    assert.equal(r1.signatures, 1);
    assert.equal(r1.signature, `${registry.host}/app:${cosignSignatureTag(digest)}`);
    const second = await sign(keyB, 'password B');
    assert.equal(second.code, 0, second.stderr);
    assert.equal(JSON.parse(second.stdout).signatures, 2);

    const { bytes, manifest } = await sigManifest('app');
    assert.equal(manifest.schemaVersion, 2);
    assert.equal(manifest.mediaType, 'application/vnd.oci.image.manifest.v1+json');
    assert.equal(manifest.config.mediaType, 'application/vnd.oci.image.config.v1+json');
    const config = JSON.parse((await get(`/v2/app/blobs/${manifest.config.digest}`)).toString());
    assert.deepEqual(config.rootfs, { type: 'layers', diff_ids: manifest.layers.map((l) => l.digest) });
    assert.equal(manifest.layers.length, 2);
    for (const l of manifest.layers) {
      assert.equal(l.mediaType, COSIGN_SIMPLESIGNING_MEDIA_TYPE);
      assert.deepEqual(Object.keys(l.annotations), [ANNOTATION_SIGNATURE]);
      const payload = JSON.parse((await get(`/v2/app/blobs/${l.digest}`)).toString());
      assert.deepEqual(payload, {
        critical: { identity: { 'docker-reference': image }, image: { 'docker-manifest-digest': digest }, type: 'cosign container image signature' },
        optional: null,
      });
    }
    assert.deepEqual(await verifiers('app', manifest.layers[0]!, [pubA, pubB]), [pubA]);
    assert.deepEqual(await verifiers('app', manifest.layers[1]!, [pubA, pubB]), [pubB]);

    const again = await sign(keyA, 'password A');
    assert.equal(again.code, 0, again.stderr);
    const r3 = JSON.parse(again.stdout);
    assert.equal(r3.added, false);
    assert.equal(r3.signatures, 2);
    assert.deepEqual((await sigManifest('app')).bytes, bytes, 'the .sig manifest is unchanged');
  });

  // Debian's skopeo cannot verify sigstore signatures ("Debian-local change:
  // sigstore disabled"), but it reads and copies attachments: what it copies
  // must still verify; and berth appends to the manifest skopeo wrote.
  it('skopeo copies berth\'s signatures to another repository, where they still verify', async () => {
    const registriesDir = path.join(work, 'registries.d');
    await mkdir(registriesDir, { recursive: true });
    await writeFile(path.join(registriesDir, 'sigstore.yaml'), `docker:\n  ${registry.host}:\n    use-sigstore-attachments: true\n`);
    // Copy between repositories: containers/image reads and rewrites the attachments.
    const r = await exec('skopeo', ['copy', '--insecure-policy', '--registries.d', registriesDir, '--src-tls-verify=false', '--dest-tls-verify=false', `docker://${image}`, `docker://${registry.host}/copy:1`]);
    assert.equal(r.code, 0, r.stderr);
    const { manifest } = await sigManifest('copy');
    assert.equal(manifest.layers.length, 2);
    assert.deepEqual(await verifiers('copy', manifest.layers[0]!, [pubA, pubB]), [pubA]);
    assert.deepEqual(await verifiers('copy', manifest.layers[1]!, [pubA, pubB]), [pubB]);

    const more = await berth(['sign', '--sigstore-key', keyA, '--tls-verify=false', '--json', `docker://${registry.host}/copy:1`], { COSIGN_PASSWORD: 'password A' });
    assert.equal(more.code, 0, more.stderr);
    const after3 = (await sigManifest('copy')).manifest;
    assert.equal(after3.layers.length, 3);
    assert.deepEqual(after3.layers.slice(0, 2), manifest.layers, "skopeo's layers are kept as they were");
    assert.deepEqual(await verifiers('copy', after3.layers[2]!, [pubA, pubB]), [pubA]);
  });

  it('keygen -> trust set sigstoreSigned -> sign -> berth pull is accepted; required by another key it is refused', async () => {
    const policy = path.join(work, 'policy.json');
    const regd = path.join(work, 'registries.d-pull');
    const trustSet = (pub: string) => berth(['trust', '--policy', policy, '--registries.d', regd, 'set', '--type', 'sigstoreSigned', '--pubkeys', pub, `${registry.host}/app`]);
    const pull = (root: string) => berth(['--root', path.join(work, root), 'pull', '--policy', policy, '--registries.d', regd, '--tls-verify=false', `docker://${image}`]);

    const set = await trustSet(pubA);
    assert.equal(set.code, 0, set.stderr);
    const written = [await readFile(policy, 'utf8'), await readFile(path.join(regd, 'berth.yaml'), 'utf8')];
    assert.deepEqual(JSON.parse(written[0]!).transports.docker[`${registry.host}/app`], [{ type: 'sigstoreSigned', keyPath: pubA }]);
    assert.match(written[1]!, /use-sigstore-attachments: true/);
    assert.equal((await trustSet(pubA)).code, 0);
    assert.deepEqual([await readFile(policy, 'utf8'), await readFile(path.join(regd, 'berth.yaml'), 'utf8')], written, 'trust set again changes nothing');

    const accepted = await pull('root-a');
    assert.equal(accepted.code, 0, accepted.stderr);
    assert.match(accepted.stdout + accepted.stderr, new RegExp(digest.slice('sha256:'.length, 'sha256:'.length + 12)));

    // Signed by A and B, but the policy wants a key that signed nothing.
    const stranger = path.join(work, 'stranger.pub');
    await writeFile(stranger, generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey.export({ type: 'spki', format: 'pem' }));
    assert.equal((await trustSet(stranger)).code, 0);
    const refused = await pull('root-stranger');
    assert.equal(refused.code, 8, refused.stderr);
    assert.equal(refused.stderr.split('\n').filter((l) => l.startsWith('berth: error: ')).length, 1, refused.stderr);
  });

  it('pushes through a Bearer token service with --creds, asking for pull,push', async () => {
    const ts = await TokenServer.start({ upstream: registry.host, user: 'berth', password: 'secret', tokenTtlMs: 60_000 });
    try {
      const before = (await sigManifest('app')).manifest.layers.length;
      const r = await berth(['sign', '--sigstore-key', keyB, '--tls-verify=false', '--creds', 'berth:secret', '--json', `docker://${ts.host}/app:1`], { COSIGN_PASSWORD: 'password B' });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(JSON.parse(r.stdout).signatures, before + 1);
      assert.ok(ts.tokenRequests.some((t) => t.status === 200 && t.scopes.includes('repository:app:pull,push')), JSON.stringify(ts.tokenRequests));
      const layers = (await sigManifest('app')).manifest.layers;
      assert.deepEqual(await verifiers('app', layers.at(-1)!, [pubA, pubB]), [pubB]);
    } finally {
      await ts.stop();
    }
  });
});
