/**
 * The publisher end to end (issue 15): a real docker-registry, real gpg keys,
 * berth (bin/berth.js) run as the publisher against a plain directory as the
 * share. Hosts are not needed for what is proven here: what lands on the
 * share (share/layout.ts), and that a host's signedBy policy on the
 * publisher's key accepts exactly the approved images (checked with berth
 * pull into a throw-away root, the same trust path as install).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { GpgHome } from '../fixtures/gpg.ts';
import { buildImage, pushImage } from '../fixtures/oci-image.ts';
import { TestRegistry } from '../harness/registry.ts';

const BERTH = path.resolve(import.meta.dirname, '../../bin/berth.js');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function berth(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BERTH, ...args], { env: { ...process.env, ...env }, maxBuffer: 64 * 1024 * 1024, timeout: 300_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1;
      resolve({ code, stdout, stderr });
    });
  });
}

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const dirOf = (digest: string) => digest.replace(':', '-');

describe('berth publish', () => {
  let work: string;
  let registry: TestRegistry;
  let gpg: GpgHome;
  let secretKey: string;
  let publicKey: string;
  let share: string;

  before(async () => {
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'berth-publisher-'));
    share = path.join(work, 'share');
    [registry, gpg] = await Promise.all([TestRegistry.start(), GpgHome.create()]);
    const fpr = await gpg.generateKey('berth publisher', 'publisher@berth.example', 'ed25519');
    secretKey = path.join(work, 'publisher.key');
    publicKey = path.join(work, 'publisher.gpg');
    await fs.writeFile(secretKey, await gpg.exportSecret(fpr));
    await fs.writeFile(publicKey, await gpg.exportPublic([fpr]));
  });

  after(async () => {
    await Promise.allSettled([registry?.stop(), gpg?.cleanup()]);
    if (work) await fs.rm(work, { recursive: true, force: true });
  });

  /** A host's view: a policy that requires the publisher's key, signatures looked up on the share. */
  async function hostPolicy(name: string): Promise<string[]> {
    const dir = path.join(work, `host-${name}`);
    await fs.mkdir(path.join(dir, 'registries.d'), { recursive: true });
    await fs.writeFile(
      path.join(dir, 'policy.json'),
      JSON.stringify({ default: [{ type: 'reject' }], transports: { docker: { [registry.host]: [{ type: 'signedBy', keyType: 'GPGKeys', keyPath: publicKey }] } } }),
    );
    await fs.writeFile(path.join(dir, 'registries.d', 'share.yaml'), `docker:\n  ${registry.host}:\n    lookaside: file://${share}/sigstore\n`);
    return ['--root', path.join(dir, 'root'), '--policy', path.join(dir, 'policy.json'), '--registries.d', path.join(dir, 'registries.d'), '--tls-verify=false'];
  }

  it('publish add explodes one image completely onto the share, approves and signs it, and sets the ref last', async () => {
    const img = await buildImage(path.join(work, 'oci'), 'v1', { layers: [[{ path: 'etc/hello', content: 'hello from v1\n' }]] });
    const digest = await pushImage(img, registry.host, 'app', 'v1');
    const r = await berth(['publish', 'add', '--share', share, '--key', secretKey, '--tls-verify=false', '--insecure-policy', '--json', `docker://${registry.host}/app:v1`]);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { digest: string; exploded: boolean; decision: { state: string; signed?: string[] } };
    assert.equal(out.digest, digest);
    assert.equal(out.exploded, true);
    assert.equal(out.decision.state, 'approved');
    assert.deepEqual(out.decision.signed, [`${registry.host}/app:v1`]);

    assert.deepEqual(JSON.parse(await fs.readFile(path.join(share, 'berth-share.json'), 'utf8')), { format: 'berth-share', version: 1 });
    const dir = path.join(share, 'images', dirOf(digest));
    assert.equal(await fs.readFile(path.join(dir, 'rootfs/etc/hello'), 'utf8'), 'hello from v1\n');
    assert.ok((await fs.lstat(path.join(dir, 'rootfs/bin/busybox'))).nlink >= 2, 'rootfs files are hard links to the share store');
    assert.equal(sha256(await fs.readFile(path.join(dir, 'manifest.json'))), digest, 'manifest.json is the exact manifest');
    const entry = JSON.parse(await fs.readFile(path.join(dir, 'image.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(entry['reference'], `${registry.host}/app:v1`);
    assert.equal(entry['digest'], digest);
    assert.ok(typeof entry['size'] === 'number' && entry['size'] > 0);
    const decision = JSON.parse(await fs.readFile(path.join(share, 'decisions', `${dirOf(digest)}.json`), 'utf8')) as Record<string, unknown>;
    assert.equal(decision['state'], 'approved');
    assert.equal(await fs.readFile(path.join(share, 'refs', registry.host, 'app', 'v1'), 'utf8'), `${digest}\n`);
    assert.deepEqual(await fs.readdir(path.join(share, '.staging')), [], 'nothing is left staged');
    await fs.access(path.join(share, 'sigstore', `app@${digest.replace(':', '=')}`, 'signature-1'));

    // A host requiring the publisher's key accepts the approved image from the registry.
    const pulled = await berth(['pull', '-q', ...(await hostPolicy('a')), `docker://${registry.host}/app:v1`]);
    assert.equal(pulled.code, 0, pulled.stderr);
    assert.equal(pulled.stdout.trim(), digest);

    // Again: idempotent, nothing exploded twice, no second signature.
    const again = await berth(['publish', 'add', '--share', share, '--key', secretKey, '--tls-verify=false', '--insecure-policy', '--json', `docker://${registry.host}/app:v1`]);
    assert.equal(again.code, 0, again.stderr);
    assert.equal((JSON.parse(again.stdout) as { exploded: boolean }).exploded, false);
    await assert.rejects(fs.access(path.join(share, 'sigstore', `app@${digest.replace(':', '=')}`, 'signature-2')));
  });

  it('refuses what it cannot publish with one line and no change', async () => {
    const r = await berth(['publish', 'add', '--share', share, '--insecure-policy', 'oci:/nonexistent:x']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /^berth: error: the publisher publishes registry images; .* \(write docker:\/\/HOST\[:PORT\]\/REPO:TAG\)$/m);
    const missing = await berth(['publish', 'add', '--share', share, '--tls-verify=false', '--insecure-policy', `docker://${registry.host}/nothing:here`]);
    assert.equal(missing.code, 3, missing.stderr);
    assert.deepEqual(await fs.readdir(path.join(share, '.staging')), []);
  });
});
