/**
 * The publisher end to end (issue 15): a real docker-registry, real gpg keys,
 * berth (bin/berth.js) run as the publisher against a plain directory as the
 * share. Hosts are not needed for what is proven here: what lands on the
 * share (share/layout.ts), and that a host's signedBy policy on the
 * publisher's key accepts exactly the approved images (checked with berth
 * pull into a throw-away root, the same trust path as install).
 */
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { GpgHome } from '../fixtures/gpg.ts';
import { buildImage, pushImage } from '../fixtures/oci-image.ts';
import { debianTestImage, OSV_FIXTURE_DIR } from '../fixtures/scan-images.ts';
import { TestRegistry, unusedPort } from '../harness/registry.ts';
import { waitFor } from '../harness/wait.ts';

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

/** `berth publish run` in the background; its output collected for failure messages. */
class Service {
  log = '';
  private constructor(readonly child: ChildProcess) {
    child.stdout?.on('data', (d: Buffer) => (this.log += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (this.log += d.toString()));
  }
  static start(args: readonly string[]): Service {
    return new Service(spawn(process.execPath, [BERTH, 'publish', 'run', ...args], { stdio: ['ignore', 'pipe', 'pipe'] }));
  }
  /** SIGTERM (what systemd sends), SIGKILL if it does not end within 60 s. */
  async stop(): Promise<number | null> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return this.child.exitCode;
    const exited = new Promise<number | null>((r) => this.child.once('exit', (code) => r(code)));
    this.child.kill('SIGTERM');
    const t = setTimeout(() => this.child.kill('SIGKILL'), 60_000);
    try {
      return await exited;
    } finally {
      clearTimeout(t);
    }
  }
}

const readIf = (f: string) => fs.readFile(f, 'utf8').catch(() => undefined);

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

  const services: Service[] = [];
  const registries: TestRegistry[] = [];

  after(async () => {
    await Promise.allSettled(services.map((s) => s.stop()));
    await Promise.allSettled([registry?.stop(), gpg?.cleanup(), ...registries.map((r) => r.stop())]);
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
  it('the service publishes a push it is notified of, without anyone calling it (polling an hour apart)', async () => {
    const port = await unusedPort();
    const token = 'publisher-test-token-0123456789abcdef';
    const hooked = await TestRegistry.start({ notifications: [{ name: 'publisher', url: `http://127.0.0.1:${port}/events`, headers: { Authorization: `Bearer ${token}` } }] });
    registries.push(hooked);
    const hshare = path.join(work, 'share-hooked');
    await fs.writeFile(path.join(work, 'hook.token'), `${token}\n`);
    const conf = path.join(work, 'hooked.conf');
    await fs.writeFile(
      conf,
      [`share=${hshare}`, `repository=${hooked.host}/svc`, 'poll-interval=1h', `listen=127.0.0.1:${port}`, `token-file=${path.join(work, 'hook.token')}`, `key=${secretKey}`, 'tls-verify=false', ''].join('\n'),
    );
    const service = Service.start(['--config', conf, '--insecure-policy']);
    services.push(service);
    await waitFor(async () => (service.log.includes('listening for registry notifications') ? true : undefined), 60_000).catch((e: Error) => assert.fail(`${e.message}\n${service.log}`));

    // A wrong token or media type is refused, and triggers nothing.
    const envelope = JSON.stringify({ events: [{ action: 'push', target: { mediaType: 'application/vnd.oci.image.manifest.v1+json', repository: 'svc', tag: 'x', digest: `sha256:${'0'.repeat(64)}` } }] });
    const bad = await fetch(`http://127.0.0.1:${port}/events`, { method: 'POST', headers: { 'content-type': 'application/vnd.docker.distribution.events.v1+json', authorization: 'Bearer wrong' }, body: envelope });
    assert.equal(bad.status, 401);
    const badType = await fetch(`http://127.0.0.1:${port}/events`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: envelope });
    assert.equal(badType.status, 415);

    const img = await buildImage(path.join(work, 'oci'), 'svc1', { layers: [[{ path: 'etc/svc', content: 'svc 1\n' }]] });
    const digest = await pushImage(img, hooked.host, 'svc', '1');
    const ref = path.join(hshare, 'refs', hooked.host, 'svc', '1');
    const got = await waitFor(() => readIf(ref), 180_000).catch((e: Error) => assert.fail(`${e.message}\n${service.log}`));
    assert.equal(got, `${digest}\n`);
    assert.equal(await fs.readFile(path.join(hshare, 'images', dirOf(digest), 'rootfs/etc/svc'), 'utf8'), 'svc 1\n');
    await fs.access(path.join(hshare, 'sigstore', `svc@${digest.replace(':', '=')}`, 'signature-1'));

    // A second tag: notified too.
    const img2 = await buildImage(path.join(work, 'oci'), 'svc2', { layers: [[{ path: 'etc/svc', content: 'svc 2\n' }]] });
    const digest2 = await pushImage(img2, hooked.host, 'svc', '2');
    assert.equal(await waitFor(() => readIf(path.join(hshare, 'refs', hooked.host, 'svc', '2')), 180_000).catch((e: Error) => assert.fail(`${e.message}\n${service.log}`)), `${digest2}\n`);
    assert.equal(await service.stop(), 0, service.log);
    assert.deepEqual(await fs.readdir(path.join(hshare, '.staging')), []);
  });

  it('the service publishes by polling alone (no endpoint), every tag of a watched repository', async () => {
    const pshare = path.join(work, 'share-polled');
    const conf = path.join(work, 'polled.conf');
    await fs.writeFile(conf, [`share=${pshare}`, `repository=${registry.host}/polled`, 'poll-interval=2s', 'tls-verify=false', ''].join('\n'));
    const service = Service.start(['--config', conf, '--insecure-policy']);
    services.push(service);
    const a = await buildImage(path.join(work, 'oci'), 'pa', { layers: [[{ path: 'etc/polled', content: 'a\n' }]] });
    const b = await buildImage(path.join(work, 'oci'), 'pb', { layers: [[{ path: 'etc/polled', content: 'b\n' }]] });
    const [da, db] = [await pushImage(a, registry.host, 'polled', 'a'), await pushImage(b, registry.host, 'polled', 'b')];
    const fail = (e: Error) => assert.fail(`${e.message}\n${service.log}`);
    assert.equal(await waitFor(() => readIf(path.join(pshare, 'refs', registry.host, 'polled', 'a')), 180_000).catch(fail), `${da}\n`);
    assert.equal(await waitFor(() => readIf(path.join(pshare, 'refs', registry.host, 'polled', 'b')), 180_000).catch(fail), `${db}\n`);
    // The tag moves: the next poll publishes the new digest.
    const a2 = await buildImage(path.join(work, 'oci'), 'pa2', { layers: [[{ path: 'etc/polled', content: 'a2\n' }]] });
    const da2 = await pushImage(a2, registry.host, 'polled', 'a');
    assert.equal(await waitFor(async () => ((await readIf(path.join(pshare, 'refs', registry.host, 'polled', 'a'))) === `${da2}\n` ? true : undefined), 180_000).catch(fail), true);
    assert.equal(await service.stop(), 0, service.log);
  });

  it('an operator blocks an image: its signature goes, its tag moves back, status says why; approve brings it back', async () => {
    const common = ['--share', share, '--key', secretKey, '--tls-verify=false', '--insecure-policy'];
    const v1 = await buildImage(path.join(work, 'oci'), 'op1', { layers: [[{ path: 'etc/op', content: '1\n' }]] });
    const v2 = await buildImage(path.join(work, 'oci'), 'op2', { layers: [[{ path: 'etc/op', content: '2\n' }]] });
    const d1 = await pushImage(v1, registry.host, 'op', 'stable');
    assert.equal((await berth(['publish', 'add', ...common, `docker://${registry.host}/op:stable`])).code, 0);
    const d2 = await pushImage(v2, registry.host, 'op', 'stable');
    assert.equal((await berth(['publish', 'add', ...common, `docker://${registry.host}/op:stable`])).code, 0);
    const refFile = path.join(share, 'refs', registry.host, 'op', 'stable');
    assert.equal(await fs.readFile(refFile, 'utf8'), `${d2}\n`);

    const blocked = await berth(['publish', 'block', '--share', share, '--reason', 'CVE-2099-0001 found by hand', '--json', `${registry.host}/op:stable`]);
    assert.equal(blocked.code, 0, blocked.stderr);
    assert.deepEqual(JSON.parse(blocked.stdout), { digest: d2, reference: `${registry.host}/op:stable`, state: 'blocked', ref: d1 });
    assert.equal(await fs.readFile(refFile, 'utf8'), `${d1}\n`, 'the tag moved back to the previous approved digest');
    await assert.rejects(fs.access(path.join(share, 'sigstore', `op@${d2.replace(':', '=')}`)), 'no approval signature is left');
    const pulled = await berth(['pull', ...(await hostPolicy('b')), `docker://${registry.host}/op:stable`]);
    assert.equal(pulled.code, 8, `a host requiring the publisher's key refuses the blocked image: ${pulled.stderr}`);

    const status = await berth(['publish', 'status', '--share', share, '--json']);
    assert.equal(status.code, 0, status.stderr);
    const entries = JSON.parse(status.stdout) as { digest: string; state: string; by: string; reasons: string[]; refs: string[] }[];
    const e2 = entries.find((e) => e.digest === d2)!;
    assert.equal(e2.state, 'blocked');
    assert.equal(e2.by, 'operator');
    assert.deepEqual(e2.reasons, ['CVE-2099-0001 found by hand']);
    assert.deepEqual(entries.find((e) => e.digest === d1)!.refs, [`${registry.host}/op:stable`]);
    const text = await berth(['publish', 'status', '--share', share]);
    assert.match(text.stdout, /blocked: CVE-2099-0001 found by hand/);

    // A later publish of the same digest does not override the operator.
    assert.equal((await berth(['publish', 'add', ...common, `docker://${registry.host}/op:stable`])).code, 0);
    assert.equal(await fs.readFile(refFile, 'utf8'), `${d1}\n`);

    const approved = await berth(['publish', 'approve', '--share', share, '--key', secretKey, '--json', d2]);
    assert.equal(approved.code, 0, approved.stderr);
    assert.equal(await fs.readFile(refFile, 'utf8'), `${d2}\n`);
    const again = await berth(['pull', '-q', ...(await hostPolicy('c')), `docker://${registry.host}/op:stable`]);
    assert.equal(again.code, 0, again.stderr);
  });

  it('retention keeps the last N approved digests; older ones are retired, then removed after the grace', async () => {
    const rshare = path.join(work, 'share-retention');
    const conf = path.join(work, 'retention.conf');
    await fs.writeFile(conf, [`share=${rshare}`, 'keep=1', 'grace=1h', 'tls-verify=false', ''].join('\n'));
    const digests: string[] = [];
    for (const n of [1, 2, 3]) {
      const img = await buildImage(path.join(work, 'oci'), `ret${n}`, { layers: [[{ path: 'etc/ret', content: `${n}\n` }]] });
      digests.push(await pushImage(img, registry.host, 'ret', 'latest'));
      const r = await berth(['publish', 'add', '--config', conf, '--insecure-policy', `docker://${registry.host}/ret:latest`]);
      assert.equal(r.code, 0, r.stderr);
    }
    const [d1, d2, d3] = digests as [string, string, string];
    const status = JSON.parse((await berth(['publish', 'status', '--config', conf, '--json'])).stdout) as { digest: string; retired?: { removeAfter: string } }[];
    assert.ok(status.find((e) => e.digest === d1)?.retired, 'v1 is retired');
    assert.ok(status.find((e) => e.digest === d2)?.retired, 'v2 is retired');
    assert.equal(status.find((e) => e.digest === d3)?.retired, undefined, 'v3, the newest, is kept');
    await fs.access(path.join(rshare, 'retired', `${dirOf(d1)}.json`));
    // Still complete during the grace: a host running v1 keeps its files.
    assert.equal(await fs.readFile(path.join(rshare, 'images', dirOf(d1), 'rootfs/etc/ret'), 'utf8'), '1\n');

    // The grace shortened to a second (it applies to images retired before): the next pass removes them.
    await fs.writeFile(conf, [`share=${rshare}`, 'keep=1', 'grace=1s', 'tls-verify=false', ''].join('\n'));
    await new Promise((r) => setTimeout(r, 1500));
    const r = await berth(['publish', 'add', '--config', conf, '--insecure-policy', `docker://${registry.host}/ret:latest`]);
    assert.equal(r.code, 0, r.stderr);
    for (const d of [d1, d2]) {
      await assert.rejects(fs.access(path.join(rshare, 'images', dirOf(d))), `${d} is removed`);
      await assert.rejects(fs.access(path.join(rshare, 'retired', `${dirOf(d)}.json`)));
      await assert.rejects(fs.access(path.join(rshare, 'decisions', `${dirOf(d)}.json`)));
    }
    assert.equal(await fs.readFile(path.join(rshare, 'images', dirOf(d3), 'rootfs/etc/ret'), 'utf8'), '3\n');
    assert.equal(await fs.readFile(path.join(rshare, 'refs', registry.host, 'ret', 'latest'), 'utf8'), `${d3}\n`);
    const verify = await berth(['verify', '--root', rshare]);
    assert.equal(verify.code, 0, `the share's store is consistent after gc: ${verify.stdout}${verify.stderr}`);
  });
  it('an image with a package the OSV fixture lists at a blocked severity is blocked: status names the advisory, no signature, no ref', async () => {
    const sshare = path.join(work, 'share-scan');
    const conf = path.join(work, 'scan.conf');
    await fs.writeFile(conf, [`share=${sshare}`, `key=${secretKey}`, `osv-dir=${OSV_FIXTURE_DIR}`, 'block-at=high', 'tls-verify=false', ''].join('\n'));
    const clean = await buildImage(path.join(work, 'oci'), 'clean', { layers: [[{ path: 'etc/clean', content: 'no packages\n' }]] });
    const dclean = await pushImage(clean, registry.host, 'scanned', 'clean');
    const vuln = await buildImage(path.join(work, 'oci'), 'vuln', debianTestImage());
    const dvuln = await pushImage(vuln, registry.host, 'scanned', 'vuln');

    const ok = await berth(['publish', 'add', '--config', conf, '--insecure-policy', `docker://${registry.host}/scanned:clean`]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(await fs.readFile(path.join(sshare, 'refs', registry.host, 'scanned', 'clean'), 'utf8'), `${dclean}\n`);

    const r = await berth(['publish', 'add', '--config', conf, '--insecure-policy', '--json', `docker://${registry.host}/scanned:vuln`]);
    assert.equal(r.code, 0, `publishing a blocked image is not an error of the publisher: ${r.stderr}`);
    const out = JSON.parse(r.stdout) as { decision: { state: string; reasons: string[] } };
    assert.equal(out.decision.state, 'blocked');
    assert.ok(out.decision.reasons.some((x) => x.includes('BERTH-TEST-0001')), out.decision.reasons.join('\n'));
    const dir = path.join(sshare, 'images', dirOf(dvuln));
    const sbom = JSON.parse(await fs.readFile(path.join(dir, 'sbom.cdx.json'), 'utf8')) as { bomFormat: string; components: { name: string }[] };
    assert.equal(sbom.bomFormat, 'CycloneDX');
    assert.ok(sbom.components.some((c) => c.name === 'openssl'));
    await assert.rejects(fs.access(path.join(sshare, 'refs', registry.host, 'scanned', 'vuln')), 'a blocked image gets no ref');
    await assert.rejects(fs.access(path.join(sshare, 'sigstore', `scanned@${dvuln.replace(':', '=')}`)), 'and no approval signature');

    const status = await berth(['publish', 'status', '--config', conf]);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, new RegExp(`${dvuln.slice(0, 19)}\\s+${registry.host.replace(/[.]/g, '\\.')}/scanned:vuln\\s+blocked\\s+scan\\s+BERTH-TEST-0001\\(critical\\),BERTH-TEST-0006\\(medium\\),BERTH-TEST-0002\\(low\\)`));
    assert.match(status.stdout, /blocked: BERTH-TEST-0001 \(critical\) in libssl3/);
    const json = JSON.parse((await berth(['publish', 'status', '--config', conf, '--json'])).stdout) as { digest: string; state: string; findings: { id: string; severity: string }[] }[];
    const e = json.find((x) => x.digest === dvuln)!;
    assert.equal(e.state, 'blocked');
    assert.deepEqual([...new Set(e.findings.map((f) => f.id))].sort(), ['BERTH-TEST-0001', 'BERTH-TEST-0002', 'BERTH-TEST-0006']);
    assert.equal(json.find((x) => x.digest === dclean)!.state, 'approved');

    // A host requiring the publisher's key refuses it from the registry too.
    const pulled = await berth(['pull', ...(await hostPolicy('scan')), `docker://${registry.host}/scanned:vuln`]);
    assert.equal(pulled.code, 8, pulled.stderr);
  });
});
