/**
 * berth scan for real, through the CLI: images built with package databases
 * (test/fixtures/scan-images.ts), pushed to a real registry, pulled into a
 * real store, checked out and scanned against the OSV fixture advisories
 * (test/fixtures/osv/), with real hook processes. Scanning needs root but
 * not systemd, so berth runs on this host with a --root of the test's own.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { buildImage, pushImage, type BuiltImage } from '../fixtures/oci-image.ts';
import { alpineTestImage, debianTestImage, OSV_FIXTURE_DIR } from '../fixtures/scan-images.ts';
import { TestRegistry } from '../harness/registry.ts';
import { runCommand } from '../harness/util.ts';

const BERTH = fileURLToPath(new URL('../../bin/berth.js', import.meta.url));

interface Report {
  target: string;
  digest?: string;
  verdict: 'approve' | 'block';
  reasons: string[];
  packages: { name: string; version: string; purl: string }[];
  findings: { id: string; package: string; severity: string; allowed: boolean; source: string }[];
  sbom: { bomFormat: string; specVersion: string; metadata: { component: { name: string; version?: string } }; components: { type: string; purl?: string }[] };
}

describe('berth scan, end to end', () => {
  let registry: TestRegistry;
  let work: string;
  let root: string;
  let policy: string;
  let debian: BuiltImage;
  let alpine: BuiltImage;
  let hostile: BuiltImage;
  const ref = (repo: string) => `docker://${registry.host}/${repo}`;
  const berth = (...args: string[]) => runCommand(process.execPath, [BERTH, '--root', root, ...args]);
  const scan = (...args: string[]) => berth('scan', '--osv', OSV_FIXTURE_DIR, ...args);

  before(async () => {
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'berth-scan-e2e-'));
    root = path.join(work, 'root');
    policy = path.join(work, 'policy.json');
    await fs.writeFile(policy, JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }));
    registry = await TestRegistry.start();
    const layout = path.join(work, 'layout');
    debian = await buildImage(layout, 'debian', debianTestImage());
    alpine = await buildImage(layout, 'alpine', alpineTestImage());
    // A dpkg status that is a symlink climbing out of the image: it must resolve to the image's own /etc/passwd.
    hostile = await buildImage(layout, 'hostile', { layers: [[{ path: 'var/lib/dpkg/status', type: 'symlink', linkname: '../../../../../../../../etc/passwd' }]], config: { Cmd: ['/bin/true'] } });
    await Promise.all([pushImage(debian, registry.host, 'scan/debian', '1'), pushImage(alpine, registry.host, 'scan/alpine', '1'), pushImage(hostile, registry.host, 'scan/hostile', '1')]);
    for (const repo of ['scan/debian:1', 'scan/alpine:1', 'scan/hostile:1']) {
      const r = await berth('pull', '--policy', policy, '--tls-verify=false', '--quiet', ref(repo));
      assert.equal(r.code, 0, r.stderr);
    }
  });

  after(async () => {
    await registry?.stop();
    if (work) await fs.rm(work, { recursive: true, force: true });
  });

  it('blocks a pulled image with a package a critical advisory names: exit 10, one line naming the advisory', async () => {
    const r = await scan('--block-at', 'high', ref('scan/debian:1'));
    assert.equal(r.code, 10, r.stderr);
    const errors = r.stderr.split('\n').filter((l) => l.startsWith('berth: error:'));
    assert.equal(errors.length, 1, r.stderr);
    assert.match(errors[0]!, /is blocked by the scan policy: BERTH-TEST-0001 \(critical\) in libssl3 3\.0\.11-1~deb12u2 \(fixed in 3\.0\.15-1~deb12u1\), openssl 3\.0\.11-1~deb12u2/);
    assert.doesNotMatch(errors[0]!, /BERTH-TEST-0002|BERTH-TEST-0006/, 'low and medium findings do not block at high');
    assert.match(r.stdout, /^CRITICAL\s+BERTH-TEST-0001\s+libssl3\s+3\.0\.11-1~deb12u2\s+3\.0\.15-1~deb12u1/m);
    assert.match(r.stdout, /^LOW\s+BERTH-TEST-0002\s+zlib1g/m);
    assert.match(r.stdout, /^verdict: block$/m);
    assert.doesNotMatch(r.stdout, /BERTH-TEST-0004|BERTH-TEST-0005/, 'past last_affected, and withdrawn');
  });

  it('--json: the whole report for scripts, with the image digest and a CycloneDX 1.5 SBOM; still exit 10', async () => {
    const r = await scan('--block-at', 'high', '--json', ref('scan/debian:1'));
    assert.equal(r.code, 10, r.stderr);
    const report = JSON.parse(r.stdout) as Report;
    assert.equal(report.verdict, 'block');
    assert.equal(report.digest, debian.manifestDigest);
    assert.deepEqual(report.packages.map((p) => p.name), ['bash', 'curl', 'libssl3', 'openssl', 'zlib1g'], 'config-files only packages are not installed');
    assert.deepEqual([...new Set(report.findings.map((f) => f.id))].sort(), ['BERTH-TEST-0001', 'BERTH-TEST-0002', 'BERTH-TEST-0006']);
    assert.equal(report.sbom.bomFormat, 'CycloneDX');
    assert.equal(report.sbom.specVersion, '1.5');
    assert.equal(report.sbom.metadata.component.version, debian.manifestDigest);
    assert.ok(report.sbom.components.some((c) => c.type === 'operating-system'));
    assert.ok(report.sbom.components.some((c) => c.purl === 'pkg:deb/debian/zlib1g@1:1.2.13.dfsg-1?arch=amd64&distro=debian-12&upstream=zlib'));
  });

  it('--allow by alias approves (exit 0) and --sbom writes the SBOM file', async () => {
    const sbomFile = path.join(work, 'debian.cdx.json');
    const r = await scan('--block-at', 'high', '--allow', 'CVE-2099-0001', '--sbom', sbomFile, ref('scan/debian:1'));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^CRITICAL\s+BERTH-TEST-0001\s+libssl3.*\ballowed\b/m);
    assert.match(r.stdout, /^verdict: approve$/m);
    const sbom = JSON.parse(await fs.readFile(sbomFile, 'utf8')) as Report['sbom'];
    assert.equal(sbom.components.filter((c) => c.type === 'library').length, 5);
  });

  it('scans an Alpine image by its short image ID', async () => {
    const id = alpine.manifestDigest.slice('sha256:'.length, 'sha256:'.length + 12);
    const r = await scan('--block-at', 'high', '--json', id);
    assert.equal(r.code, 10, r.stderr);
    const report = JSON.parse(r.stdout) as Report;
    assert.deepEqual(report.findings.map((f) => `${f.id} ${f.package} ${f.severity}`), ['BERTH-TEST-0003 busybox high', 'BERTH-TEST-0003 ssl_client high']);
  });

  it('runs hooks with the checked-out rootfs: their findings count, their failures fail the scan (exit 10)', async () => {
    const finder = path.join(work, 'finder.sh');
    // The hook proves it got the image's tree: it reports the dpkg status's first package.
    await fs.writeFile(finder, `#!/bin/sh\npkg=$(sed -n 's/^Package: //p' "$1/var/lib/dpkg/status" | head -n1)\necho "{\\"findings\\":[{\\"id\\":\\"HOOK-1\\",\\"package\\":\\"$pkg\\",\\"installed\\":\\"1\\",\\"severity\\":\\"critical\\"}]}"\n`, { mode: 0o755 });
    const found = await berth('scan', '--hook', finder, '--block-at', 'critical', '--json', ref('scan/debian:1'));
    assert.equal(found.code, 10, found.stderr);
    const report = JSON.parse(found.stdout) as Report;
    assert.deepEqual(report.findings.map((f) => [f.id, f.package, f.source]), [['HOOK-1', 'bash', 'hook:finder.sh']]);

    const broken = path.join(work, 'broken.sh');
    await fs.writeFile(broken, '#!/bin/sh\necho "not json"\n', { mode: 0o755 });
    const failed = await scan('--hook', broken, '--block-at', 'critical', ref('scan/debian:1'));
    assert.equal(failed.code, 10, failed.stderr);
    assert.match(failed.stderr, /^berth: error: scanner hook broken\.sh failed: invalid output/m);
  });

  it('reads a hostile image\'s symlinked package database inside the image, and fails closed on what it finds', async () => {
    const r = await scan('--block-at', 'high', ref('scan/hostile:1'));
    assert.equal(r.code, 10, r.stderr);
    // The link resolves to the image's busybox /etc/passwd, which is no dpkg status: the scan fails, nothing approved.
    assert.match(r.stderr, /^berth: error: cannot read \/var\/lib\/dpkg\/status in the image: paragraph 1: invalid or missing Package/m);
  });

  it('a broken advisory database fails the scan (exit 10), naming the file', async () => {
    const osv = path.join(work, 'osv-broken');
    await fs.cp(OSV_FIXTURE_DIR, osv, { recursive: true });
    await fs.writeFile(path.join(osv, 'BROKEN.json'), '{"id": "BROKEN", "affected": [');
    const r = await berth('scan', '--osv', osv, '--block-at', 'high', '--json', ref('scan/alpine:1'));
    assert.equal(r.code, 10);
    const out = JSON.parse(r.stdout) as { error: { code: string; message: string } };
    assert.equal(out.error.code, 'SCAN_FAILED');
    assert.match(out.error.message, /invalid advisory .*BROKEN\.json/);
  });

  it('an image not in the store is not found (exit 3); every temporary checkout is gone', async () => {
    const r = await scan(ref('scan/nothere:1'));
    assert.equal(r.code, 3, r.stderr);
    assert.deepEqual(await fs.readdir(path.join(root, 'store', 'tmp')), []);
  });
});
