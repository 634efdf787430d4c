import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseHookOutput, runHook } from '../../src/scan/hooks.ts';
import { scanRootfs } from '../../src/scan/index.ts';
import { applyPolicy } from '../../src/scan/policy.ts';
import type { Finding } from '../../src/scan/types.ts';
import { debianFiles, OSV_FIXTURE_DIR } from '../fixtures/scan-images.ts';

let tmp: string;
let n = 0;
before(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'berth-scan-hooks-'));
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

async function hook(body: string): Promise<string> {
  const file = path.join(tmp, `hook-${n++}`);
  await writeFile(file, `#!/bin/sh\n${body}\n`);
  await chmod(file, 0o755);
  return file;
}

const finding = (over: Partial<Finding> = {}): Finding => ({
  id: 'X-1',
  aliases: [],
  package: 'p',
  installed: '1',
  severity: 'high',
  source: 'osv',
  allowed: false,
  ...over,
});

describe('scanner hooks', () => {
  it('runs HOOK ROOTFS without a shell and reads its findings', async () => {
    const h = await hook(`printf '%s' "$1" > "${tmp}/argv"; echo '{"findings":[{"id":"H-1","package":"p","installed":"1.0","fixed":"1.1","severity":"critical","summary":"bad","aliases":["CVE-1"]}]}'`);
    const rootfs = path.join(tmp, 'a rootfs; with $(spaces)');
    await mkdir(rootfs);
    const out = await runHook(h, rootfs);
    assert.equal(await readFile(path.join(tmp, 'argv'), 'utf8'), rootfs);
    assert.deepEqual(out, [{ id: 'H-1', aliases: ['CVE-1'], package: 'p', installed: '1.0', fixed: '1.1', severity: 'critical', summary: 'bad', source: `hook:${path.basename(h)}`, allowed: false }]);
  });

  const failing: [string, string, RegExp][] = [
    ['a non-zero exit', 'echo oops >&2; exit 3', /exit status 3 \(stderr: "oops"\)/],
    ['garbage output', 'echo hello', /invalid output/],
    ['empty output', 'true', /invalid output/],
    ['an unknown member', `echo '{"findings":[],"extra":1}'`, /unknown member "extra"/],
    ['a bad severity', `echo '{"findings":[{"id":"a","package":"p","installed":"1","severity":"severe"}]}'`, /severity must be one of/],
    ['a missing member', `echo '{"findings":[{"id":"a","package":"p","severity":"low"}]}'`, /missing member "installed"/],
    ['duplicate members', `echo '{"findings":[],"findings":[]}'`, /duplicate member/],
    ['a control character in an id', `printf '{"findings":[{"id":"a\\\\u001b[31m","package":"p","installed":"1","severity":"low"}]}'`, /single-line string/],
    ['a signal', 'kill -KILL $$', /killed by SIGKILL/],
  ];
  for (const [what, body, re] of failing) {
    it(`fails the scan on ${what}`, async () => {
      await assert.rejects(runHook(await hook(body), tmp), (e: Error & { code?: string }) => {
        assert.equal(e.code, 'SCAN_FAILED');
        assert.match(e.message, re);
        return true;
      });
    });
  }

  it('kills a hook (and its children) that runs past the time limit', async () => {
    const pidFile = path.join(tmp, 'child.pid');
    const h = await hook(`sleep 600 & echo $! > "${pidFile}"; wait`);
    await assert.rejects(runHook(h, tmp, { timeoutMs: 1000, maxOutputBytes: 1000 }), /ran longer than 1 s and was killed/);
    const pid = Number(await readFile(pidFile, 'utf8'));
    // The whole process group got SIGKILL: the grandchild is gone too (at most a zombie being reaped).
    const alive = (() => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    })();
    if (alive) {
      const state = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
      assert.match(state, /^\d+ \(\S+\) Z|^$/);
    }
  });

  it('fails on output over the size limit', async () => {
    await assert.rejects(runHook(await hook('yes x | head -c 100000'), tmp, { timeoutMs: 60_000, maxOutputBytes: 1000 }), /more than 1000 bytes/);
  });

  it('fails when the hook cannot be run', async () => {
    await assert.rejects(runHook(path.join(tmp, 'no-such-hook'), tmp), /cannot run/);
  });

  it('parseHookOutput accepts an empty list', () => {
    assert.deepEqual(parseHookOutput({ findings: [] }, 'hook:x'), []);
  });
});

describe('policy', () => {
  it('blocks at or above blockAt, naming each advisory once with its packages', () => {
    const v = applyPolicy([finding({ package: 'a' }), finding({ package: 'b' }), finding({ id: 'X-2', severity: 'medium' })], { blockAt: 'high', allow: [] });
    assert.equal(v.verdict, 'block');
    assert.deepEqual(v.reasons, ['X-1 (high) in a 1, b 1']);
  });

  it('an allowed id or alias is reported, marked, and never blocks', () => {
    const v = applyPolicy([finding({ aliases: ['CVE-9'] }), finding({ id: 'X-3', severity: 'critical' })], { blockAt: 'low', allow: ['CVE-9', 'X-3'] });
    assert.equal(v.verdict, 'approve');
    assert.deepEqual(v.findings.map((f) => f.allowed), [true, true]);
    assert.deepEqual(v.reasons, ['no finding at or above low that is not allowed (2 allowed)']);
  });

  it('without blockAt nothing blocks; "unknown" blocks every finding', () => {
    assert.equal(applyPolicy([finding({ severity: 'critical' })], { allow: [] }).verdict, 'approve');
    assert.equal(applyPolicy([finding({ severity: 'unknown' })], { blockAt: 'unknown', allow: [] }).verdict, 'block');
    assert.equal(applyPolicy([finding({ severity: 'unknown' })], { blockAt: 'low', allow: [] }).verdict, 'approve');
  });

  it('unscanned databases block only when asked to', () => {
    assert.equal(applyPolicy([], { allow: [], blockAt: 'high' }, ['rpm (/var/lib/rpm/rpmdb.sqlite)']).verdict, 'approve');
    const v = applyPolicy([], { allow: [], blockUnscanned: true }, ['rpm (/var/lib/rpm/rpmdb.sqlite)']);
    assert.equal(v.verdict, 'block');
    assert.deepEqual(v.reasons, ['not scanned: rpm (/var/lib/rpm/rpmdb.sqlite)']);
  });
});

describe('scanRootfs', () => {
  it('combines inventory, advisories and hooks into one verdict and a CycloneDX SBOM', async () => {
    const root = path.join(tmp, 'debian-root');
    for (const f of debianFiles()) {
      await mkdir(path.dirname(path.join(root, f.path)), { recursive: true });
      if (f.type === 'symlink') await symlink(f.linkname!, path.join(root, f.path));
      else await writeFile(path.join(root, f.path), f.content!);
    }
    const h = await hook(`echo '{"findings":[{"id":"HOOK-1","package":"bash","installed":"5.2.15-2","severity":"low"}]}'`);
    const r = await scanRootfs(root, { blockAt: 'high', allow: [], osvDir: OSV_FIXTURE_DIR, hooks: [h] }, { name: 'test/debian:1', digest: `sha256:${'a'.repeat(64)}` });
    assert.equal(r.verdict, 'block');
    assert.match(r.reasons[0]!, /^BERTH-TEST-0001 \(critical\) in libssl3 3\.0\.11-1~deb12u2 \(fixed in 3\.0\.15-1~deb12u1\), openssl/);
    assert.deepEqual([...new Set(r.findings.map((f) => f.id))].sort(), ['BERTH-TEST-0001', 'BERTH-TEST-0002', 'BERTH-TEST-0006', 'HOOK-1']);
    assert.equal(r.digest, `sha256:${'a'.repeat(64)}`);
    const sbom = r.sbom as { bomFormat: string; specVersion: string; serialNumber: string; metadata: { component: { name: string } }; components: { type: string; purl?: string }[] };
    assert.equal(sbom.bomFormat, 'CycloneDX');
    assert.equal(sbom.specVersion, '1.5');
    assert.match(sbom.serialNumber, /^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.equal(sbom.metadata.component.name, 'test/debian:1');
    assert.deepEqual(sbom.components.map((c) => c.type), ['operating-system', 'library', 'library', 'library', 'library', 'library']);
    assert.ok(sbom.components.some((c) => c.purl === 'pkg:deb/debian/libssl3@3.0.11-1~deb12u2?arch=amd64&distro=debian-12&upstream=openssl'));

    const allowed = await scanRootfs(root, { blockAt: 'high', allow: ['CVE-2099-0001'], osvDir: OSV_FIXTURE_DIR, hooks: [] });
    assert.equal(allowed.verdict, 'approve');
  });

  it('refuses a rootfs that is not a directory', async () => {
    await assert.rejects(scanRootfs(path.join(tmp, 'none'), { allow: [], hooks: [] }), (e: Error & { code?: string }) => e.code === 'SCAN_FAILED');
  });
});
