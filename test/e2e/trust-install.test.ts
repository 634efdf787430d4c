/**
 * The trust policy on the install path, end to end: a real signedBy policy
 * (a gpg key made for the test), a look-aside signature store in a file://
 * directory (registries.d), images signed with `berth sign`, and a
 * FaultProxy in front of the registry that records every request, so the
 * tests can tell what berth fetched before it said no. berth install runs
 * inside a TestHost (real systemd, real runc).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { GpgHome } from '../fixtures/gpg.ts';
import { webImage } from '../fixtures/images.ts';
import { buildImage, hostOciArch, MEDIA_TYPE_INDEX, MEDIA_TYPE_MANIFEST, pushImage, REF_NAME_ANNOTATION, sha256Hex } from '../fixtures/oci-image.ts';
import { FaultProxy } from '../harness/fault-proxy.ts';
import { skopeoCopy, TestRegistry, unusedPort } from '../harness/registry.ts';
import { TestHost } from '../harness/test-host.ts';

const BERTH = fileURLToPath(new URL('../../bin/berth.js', import.meta.url));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(cmd, args, { maxBuffer: 16 * 1024 * 1024, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr });
    });
  });
}

/** Every file under `dir` (relative), for "nothing changed" checks. */
async function tree(dir: string): Promise<string[]> {
  const entries = await fs.readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.map((e) => path.relative(dir, path.join(e.parentPath, e.name))).sort();
}

describe('trust policy on the install path', () => {
  let host: TestHost;
  let registry: TestRegistry;
  let proxy: FaultProxy;
  let gpg: GpgHome;
  let work: string;
  let root: string;
  let policy: string;
  let registriesDir: string;
  let sigstore: string;
  let secretKey: string;
  let trustedPub: string;
  let strangerPub: string;
  let fingerprint: string;
  let port: number;
  let multiLayout: string;
  let hostManifest: string;
  const page = `<h1>signed ${process.pid}</h1>\n`;
  const ref = (repo: string) => `docker://${proxy.host}/${repo}`;

  /** Trust only images in PROXY/trust signed by the key in `pub`; reject everything else. */
  const writePolicy = (pub: string) =>
    fs.writeFile(
      policy,
      JSON.stringify({
        default: [{ type: 'reject' }],
        transports: { docker: { [`${proxy.host}/trust`]: [{ type: 'signedBy', keyType: 'GPGKeys', keyPath: pub }] } },
      }),
    );
  const trustArgs = () => ['--policy', policy, '--registries.d', registriesDir, '--tls-verify=false'];
  const berth = (...args: string[]) => run(process.execPath, [BERTH, '--root', root, ...args]);
  const install = (...args: string[]) => host.exec(process.execPath, [BERTH, '--root', root, 'install', '--system', ...trustArgs(), ...args], { timeoutMs: 120_000 });
  const sign = async (image: string) => {
    const r = await berth('sign', '--key', secretKey, '--registries.d', registriesDir, '--tls-verify=false', image);
    assert.equal(r.code, 0, `berth sign ${image}: ${r.stderr}`);
    assert.match(r.stdout, new RegExp(`signed sha256:[0-9a-f]{64} as .* with ${fingerprint}`));
  };
  const unitGone = async (name: string) => {
    assert.equal(await host.unitProperty(`${name}.service`, 'LoadState'), 'not-found', `${name}.service is unknown to systemd`);
    await assert.rejects(fs.access(path.join(host.base, 'etc-systemd-system', `${name}.service`)), 'no unit file');
    for (const d of [name, `${name}.0`, `${name}.1`]) await assert.rejects(fs.access(path.join(root, 'containers', d)), `no ${d}`);
  };
  /** Requests other than the API version check: [method, path]. */
  const requests = () => proxy.requests.filter((r) => r.path !== '/v2/').map((r) => `${r.method} ${r.path}`);

  before(async () => {
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'berth-trust-install-'));
    root = path.join(work, 'root');
    policy = path.join(work, 'policy.json');
    sigstore = path.join(work, 'sigstore');
    registriesDir = path.join(work, 'registries.d');
    port = await unusedPort();
    [host, registry, gpg] = await Promise.all([TestHost.start(), TestRegistry.start(), GpgHome.create()]);
    proxy = await FaultProxy.start(registry.url);
    await fs.mkdir(registriesDir);
    await fs.writeFile(path.join(registriesDir, 'test.yaml'), `docker:\n  ${proxy.host}:\n    lookaside: file://${sigstore}\n    lookaside-staging: file://${sigstore}\n`);

    fingerprint = await gpg.generateKey('berth release', 'release@berth.example', 'ed25519');
    secretKey = path.join(work, 'release.key');
    trustedPub = path.join(work, 'release.gpg');
    await fs.writeFile(secretKey, await gpg.exportSecret(fingerprint));
    await fs.writeFile(trustedPub, await gpg.exportPublic([fingerprint]));
    const stranger = await GpgHome.create();
    try {
      strangerPub = path.join(work, 'stranger.gpg');
      await fs.writeFile(strangerPub, await stranger.exportPublic([await stranger.generateKey('stranger', 'stranger@berth.example', 'ed25519')]));
    } finally {
      await stranger.cleanup();
    }
    await writePolicy(trustedPub);

    const layout = path.join(work, 'layout');
    const web = await buildImage(layout, 'web', webImage(port, page));
    const fresh = await buildImage(layout, 'fresh', { layers: [[{ path: 'etc/fresh', content: 'never stored\n' }]], config: { Cmd: ['/bin/true'] } });
    await Promise.all([
      pushImage(web, registry.host, 'trust/unsigned', '1'),
      pushImage(web, registry.host, 'trust/web', '1'),
      pushImage(fresh, registry.host, 'trust/fresh', '1'),
    ]);
    await sign(ref('trust/web:1'));
    await sign(ref('trust/fresh:1'));

    // A two-platform index: this host's image and another architecture's.
    multiLayout = path.join(work, 'multi');
    const mine = await buildImage(multiLayout, 'mine', { layers: [[{ path: 'etc/platform', content: 'mine\n' }]], config: { Cmd: ['/bin/sleep', '1000'] } });
    const theirs = await buildImage(multiLayout, 'theirs', { architecture: hostOciArch() === 'arm64' ? 'amd64' : 'arm64', layers: [[{ path: 'etc/platform', content: 'theirs\n' }]] });
    hostManifest = mine.manifestDigest;
    const manifests = [];
    for (const img of [mine, theirs]) {
      const bytes = await fs.readFile(path.join(multiLayout, 'blobs', 'sha256', img.manifestDigest.slice(7)));
      const config = JSON.parse(await fs.readFile(path.join(multiLayout, 'blobs', 'sha256', img.configDigest.slice(7)), 'utf8')) as { os: string; architecture: string };
      manifests.push({ mediaType: MEDIA_TYPE_MANIFEST, digest: img.manifestDigest, size: bytes.length, platform: { os: config.os, architecture: config.architecture } });
    }
    const index = JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPE_INDEX, manifests });
    await fs.writeFile(path.join(multiLayout, 'blobs', 'sha256', sha256Hex(index)), index);
    const top = JSON.parse(await fs.readFile(path.join(multiLayout, 'index.json'), 'utf8')) as { manifests: unknown[] };
    top.manifests.push({ mediaType: MEDIA_TYPE_INDEX, digest: `sha256:${sha256Hex(index)}`, size: Buffer.byteLength(index), annotations: { [REF_NAME_ANNOTATION]: 'multi' } });
    await fs.writeFile(path.join(multiLayout, 'index.json'), JSON.stringify(top));
  });

  after(async () => {
    await proxy?.stop();
    await host?.stop();
    await registry?.stop();
    await gpg?.cleanup();
    await host?.assertClean();
    if (work) await fs.rm(work, { recursive: true, force: true });
  });

  it('refuses an unsigned image (exit 8) having fetched only its manifest, and leaves nothing', async () => {
    proxy.reset();
    const r = await install('--name', 'unsigned', ref('trust/unsigned:1'));
    assert.equal(r.code, 8, r.stderr);
    assert.match(r.stderr, /^berth: error: docker:\/\/\S+\/trust\/unsigned:1 is rejected: .* requires signedBy .*, and the image has no signatures/m);
    assert.match(r.stderr, new RegExp(`looked in file://${sigstore}`), 'the look-aside store was asked');
    assert.match(r.stderr, /sign the image \(berth sign\) or change the policy \(berth trust\)/);

    const seen = requests();
    assert.ok(seen.some((s) => /^GET \/v2\/trust\/unsigned\/manifests\/1$/.test(s)), `the manifest was fetched: ${seen.join(', ')}`);
    assert.deepEqual(
      seen.filter((s) => !/^(GET|HEAD) \/v2\/trust\/unsigned\/manifests\/1$/.test(s)),
      [],
      'nothing but the manifest: no config, no layer blob',
    );

    await unitGone('unsigned');
    assert.deepEqual(await tree(path.join(root, 'store', 'images')), [], 'no image record');
    assert.deepEqual(await tree(path.join(root, 'store', 'refs')), [], 'no reference');
    assert.deepEqual(await tree(path.join(root, 'store', 'layers')), [], 'no layer');
    assert.deepEqual(await tree(path.join(root, 'store', 'objects')), [], 'no object');
  });

  it('installs and runs a signed image, and keeps its signatures in the store', async () => {
    const r = await install('--name', 'web', ref('trust/web:1'));
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await host.unitProperty('web.service', 'ActiveState'), 'active');
    assert.equal(await (await fetch(`http://127.0.0.1:${port}/index.html`)).text(), page);

    const i = await berth('inspect', '--json', ref('trust/web:1'));
    assert.equal(i.code, 0, i.stderr);
    const details = JSON.parse(i.stdout) as { signatures: number; usedBy: string[] };
    assert.ok(details.signatures > 0, 'the signature is stored with the image');
    assert.deepEqual(details.usedBy, ['web']);
    assert.match((await berth('images')).stdout, /trust\/web:1\s+[0-9a-f]{12}\s+\S+\s+[\d.]+ \S+\s+yes\s+web$/m);
  });

  it("re-checks the stored signatures against today's policy: a distrusted key is refused without a pull (exit 8)", async () => {
    await writePolicy(strangerPub);
    proxy.reset();
    const r = await install('--name', 'web-again', ref('trust/web:1'));
    assert.equal(r.code, 8, r.stderr);
    assert.match(r.stderr, /Using \S+\/trust\/web:1 from the store/, 'the store path, no pull');
    assert.match(r.stderr, /^berth: error: \S+\/trust\/web:1 is rejected: /m);
    assert.match(r.stderr, /looked in the signatures stored with the image/);
    assert.match(r.stderr, new RegExp(`signed by key ${fingerprint.slice(-16)}, which this requirement does not trust`, 'i'), 'the stored signature is named');
    assert.deepEqual(requests(), [], 'the registry was not asked');
    await unitGone('web-again');
    assert.equal(await host.unitProperty('web.service', 'ActiveState'), 'active', 'the running container is not touched');
  });

  it('a pull the policy rejects leaves the store as it was', async () => {
    const store = path.join(root, 'store');
    const before = await tree(store);
    proxy.reset();
    const r = await berth('pull', ...trustArgs(), ref('trust/fresh:1'));
    assert.equal(r.code, 8, r.stderr);
    assert.match(r.stderr, /^berth: error: \S+\/trust\/fresh:1 is rejected: /m);
    assert.deepEqual(await tree(store), before, 'no object, layer, image or reference was added');
    assert.deepEqual(requests().filter((s) => s.includes('/blobs/')), [], 'no blob was downloaded');

    // Under the old policy the same pull is accepted: the rejection was the key's.
    await writePolicy(trustedPub);
    const ok = await berth('pull', '--json', ...trustArgs(), ref('trust/fresh:1'));
    assert.equal(ok.code, 0, ok.stderr);
    // By digest too: the signature names the tag, and matchRepoDigestOrExact accepts the repository's digests.
    const { digest } = JSON.parse(ok.stdout) as { digest: string };
    const pinned = await berth('pull', ...trustArgs(), `${ref('trust/fresh')}@${digest}`);
    assert.equal(pinned.code, 0, pinned.stderr);

    const un = await host.exec(process.execPath, [BERTH, '--root', root, 'uninstall', 'web'], { timeoutMs: 60_000 });
    assert.equal(un.code, 0, un.stderr);
  });

  it("a two-platform index: installs from the store by tag and by the platform manifest's digest", async () => {
    // The index is signed under its tag, this host's manifest under its own digest.
    await skopeoCopy(`oci:${multiLayout}:multi`, `docker://${registry.host}/trust/multi:1`, ['--dest-tls-verify=false', '--all']);
    await sign(ref('trust/multi:1'));
    const pinned = `${ref('trust/multi')}@${hostManifest}`;
    await sign(pinned);
    for (const r of [ref('trust/multi:1'), pinned]) {
      const p = await berth('pull', '--json', ...trustArgs(), r);
      assert.equal(p.code, 0, `pull ${r}: ${p.stderr}`);
      assert.equal((JSON.parse(p.stdout) as { digest: string }).digest, hostManifest);
    }
    // Both references now name one stored image, whose signatures sign two different manifests (index, image).
    proxy.reset();
    for (const [name, r] of [['multi-tag', ref('trust/multi:1')], ['multi-digest', pinned]] as const) {
      const i = await install('--no-start', '--name', name, r);
      assert.equal(i.code, 0, `install ${r}: ${i.stderr}`);
      assert.match(i.stderr, /from the store/);
    }
    assert.deepEqual(requests(), [], 'both from the store');
    for (const name of ['multi-tag', 'multi-digest']) {
      const un = await host.exec(process.execPath, [BERTH, '--root', root, 'uninstall', name], { timeoutMs: 60_000 });
      assert.equal(un.code, 0, un.stderr);
    }
  });
});
