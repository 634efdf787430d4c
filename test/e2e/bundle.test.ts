/**
 * Offline bundles end to end: a signed image pulled from a registry, saved
 * with `berth save`, loaded with `berth load` into a fresh root under a
 * signedBy policy with the registry stopped and no look-aside store; skopeo
 * reads the bundle as an oci-archive; a bundle with a flipped layer byte or
 * without its signatures is refused with nothing stored.
 *
 * The commands run through their CLI modules (src/cli/save.ts, load.ts) in a
 * small yargs runner, so exit codes are the real ones whether or not main.ts
 * registers them yet.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import tarStream from 'tar-stream';
import { Paths } from '../../src/deploy/paths.ts';
import { silentReporter } from '../../src/ops/context.ts';
import { sign } from '../../src/ops/sign.ts';
import { GpgHome } from '../fixtures/gpg.ts';
import { buildImage, pushImage, type BuiltImage } from '../fixtures/oci-image.ts';
import { TestRegistry } from '../harness/registry.ts';
import { runCommand, type CommandRun } from '../harness/util.ts';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const RUNNER = `
import yargs from 'yargs';
import { globalOptions } from './src/cli/common.ts';
import { pullCommand } from './src/cli/pull.ts';
import { imagesCommand } from './src/cli/images.ts';
import { saveCommand } from './src/cli/save.ts';
import { loadCommand } from './src/cli/load.ts';
await globalOptions(yargs(process.argv.slice(1))).parserConfiguration({ 'dot-notation': false, 'greedy-arrays': false })
  .command(pullCommand).command(imagesCommand).command(saveCommand).command(loadCommand).strict().parseAsync();
`;


function berth(args: string[]): Promise<CommandRun> {
  return runCommand(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', RUNNER, ...args], 120_000, REPO);
}

function skopeo(args: string[]): Promise<CommandRun> {
  return new Promise((resolve) => {
    execFile('skopeo', args, { timeout: 120_000 }, (err, stdout, stderr) => resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr }));
  });
}

/** Rewrite a tar: `edit` returns the new content of an entry, or null to drop it. */
async function rewriteTar(from: string, to: string, edit: (name: string, data: Buffer) => Buffer | null): Promise<void> {
  const extract = tarStream.extract();
  const pack = tarStream.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => chunks.push(c as Buffer));
  const done = new Promise<void>((resolve, reject) => {
    pack.once('end', resolve);
    pack.once('error', reject);
  });
  extract.on('entry', (header, stream, next) => {
    const parts: Buffer[] = [];
    stream.on('data', (c: unknown) => parts.push(c as Buffer));
    stream.on('end', () => {
      const data = header.type === 'directory' ? Buffer.alloc(0) : edit(header.name, Buffer.concat(parts));
      if (data === null) return next();
      if (header.type === 'directory') pack.entry(header, next);
      else pack.entry({ ...header, size: data.length }, data, next);
    });
  });
  extract.on('finish', () => pack.finalize());
  extract.end(await readFile(from));
  await done;
  await writeFile(to, Buffer.concat(chunks));
}

interface ImageJson {
  digest: string;
  references: string[];
  signatures: number;
}

describe('berth save / load: offline bundles with signatures', () => {
  let work: string;
  let registry: TestRegistry;
  let home: GpgHome;
  let image: BuiltImage;
  let policy: string;
  let ref: string;
  let bundle: string;
  let emptyRegistriesD: string;
  const images = async (root: string): Promise<ImageJson[]> => {
    const r = await berth(['images', '--json', '--root', root]);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as ImageJson[];
  };

  before(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'berth-bundle-e2e-'));
    [registry, home] = await Promise.all([TestRegistry.start(), GpgHome.create()]);
    image = await buildImage(path.join(work, 'layout'), 'app', {
      busybox: false,
      layers: [[{ path: 'etc/motd', content: 'bundled\n' }], [{ path: 'usr/share/app/data', content: 'x'.repeat(100_000) }]],
      config: { Cmd: ['/bin/true'] },
    });
    ref = `docker://${registry.host}/bundle/app:1`;
    await pushImage(image, registry.host, 'bundle/app', '1');
    const sigstore = path.join(work, 'sigstore');
    const registriesD = path.join(work, 'registries.d');
    emptyRegistriesD = path.join(work, 'registries.d-empty');
    await mkdir(registriesD);
    await mkdir(emptyRegistriesD);
    await writeFile(path.join(registriesD, 'test.yaml'), `docker:\n  ${registry.host}:\n    lookaside: file://${sigstore}\n    lookaside-staging: file://${sigstore}\n`);
    const fpr = await home.generateKey('berth bundle test', 'bundle@berth.example', 'ed25519');
    const pub = path.join(work, 'pub.gpg');
    const secret = path.join(work, 'secret.key');
    await writeFile(pub, await home.exportPublic([fpr]));
    await writeFile(secret, await home.exportSecret(fpr));
    policy = path.join(work, 'policy.json');
    await writeFile(policy, JSON.stringify({ default: [{ type: 'reject' }], transports: { docker: { [`${registry.host}/bundle`]: [{ type: 'signedBy', keyType: 'GPGKeys', keyPath: pub }] } } }));
    const signed = await sign({ paths: new Paths(path.join(work, 'sign-root')), report: silentReporter }, { image: ref, keyFile: secret, registriesDir: registriesD, tlsVerify: false });
    assert.equal(signed.fingerprint, fpr);

    const root1 = path.join(work, 'root1');
    const pulled = await berth(['pull', ref, '--tls-verify=false', '--policy', policy, '--registries.d', registriesD, '--root', root1, '--quiet']);
    assert.equal(pulled.code, 0, pulled.stderr);
    bundle = path.join(work, 'bundle.tar');
    const saved = await berth(['save', ref, '-o', bundle, '--tls-verify=false', '--policy', policy, '--registries.d', registriesD, '--root', root1, '--json']);
    assert.equal(saved.code, 0, saved.stderr);
    const result = JSON.parse(saved.stdout) as { images: { digest: string; signatures: number; layers: number }[] };
    assert.deepEqual(result.images.map((i) => [i.digest, i.signatures, i.layers]), [[image.manifestDigest, 1, 2]]);
    await registry.stop(); // everything from here on is offline
  });

  after(async () => {
    await registry?.stop();
    await home?.cleanup();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('loads the bundle offline under the signedBy policy, signatures from the bundle', { timeout: 120_000 }, async () => {
    const root = path.join(work, 'root-load');
    const r = await berth(['load', bundle, '--policy', policy, '--registries.d', emptyRegistriesD, '--root', root, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const loaded = JSON.parse(r.stdout) as { reference: string; digest: string; signatures: number }[];
    assert.deepEqual(loaded.map((i) => [i.reference, i.digest, i.signatures]), [[ref, image.manifestDigest, 1]]);
    const stored = await images(root);
    assert.deepEqual(stored.map((i) => [i.digest, i.references, i.signatures]), [[image.manifestDigest, [ref], 1]]);
    // Loading again is harmless: same image, nothing new.
    const again = await berth(['load', bundle, '--policy', policy, '--registries.d', emptyRegistriesD, '--root', root, '--quiet']);
    assert.equal(again.code, 0, again.stderr);
  });

  it('is an OCI archive skopeo reads by the registry name', { timeout: 120_000 }, async (t) => {
    const probe = await skopeo(['--version']);
    if (probe.code !== 0) return t.skip('skopeo is not installed');
    const name = `${registry.host}/bundle/app:1`;
    const r = await skopeo(['copy', '--insecure-policy', `oci-archive:${bundle}:${name}`, `oci:${path.join(work, 'skopeo-copy')}:app`]);
    assert.equal(r.code, 0, r.stderr);
    const index = JSON.parse(await readFile(path.join(work, 'skopeo-copy', 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    assert.deepEqual(index.manifests.map((m) => m.digest), [image.manifestDigest], 'the same manifest, byte for byte');
  });

  it('refuses a bundle with a flipped byte in a layer blob, storing nothing', { timeout: 120_000 }, async () => {
    const layer = image.layers[1]!;
    const tampered = path.join(work, 'tampered.tar');
    await rewriteTar(bundle, tampered, (name, data) => {
      if (name !== `blobs/sha256/${layer.digest.slice(7)}`) return data;
      const copy = Buffer.from(data);
      copy[copy.length >> 1]! ^= 0x40;
      return copy;
    });
    const root = path.join(work, 'root-tampered');
    const r = await berth(['load', tampered, '--policy', policy, '--registries.d', emptyRegistriesD, '--root', root]);
    assert.equal(r.code, 5, `exit 5 (integrity) expected: ${r.stderr}`);
    assert.match(r.stderr, /digest|corrupt/i);
    assert.deepEqual(await images(root), []);
  });

  it('refuses a bundle whose signatures were dropped, storing nothing', { timeout: 120_000 }, async () => {
    const stripped = path.join(work, 'unsigned.tar');
    await rewriteTar(bundle, stripped, (name, data) => (name.startsWith('berth/signatures/') ? null : data));
    const root = path.join(work, 'root-unsigned');
    const r = await berth(['load', stripped, '--policy', policy, '--registries.d', emptyRegistriesD, '--root', root]);
    assert.equal(r.code, 8, `exit 8 (untrusted) expected: ${r.stderr}`);
    assert.deepEqual(await images(root), []);
  });
});
