import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { cvss3BaseScore, ratingOf, roundUp } from '../../src/scan/cvss.ts';
import { ecosystemMatches, isAffected, loadOsvDatabase, matchPackages, parseAdvisory } from '../../src/scan/osv.ts';
import { compareDebian } from '../../src/scan/version.ts';
import type { InstalledPackage } from '../../src/scan/types.ts';
import { OSV_FIXTURE_DIR } from '../fixtures/scan-images.ts';

let tmp: string;
let n = 0;
before(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'berth-osv-'));
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

async function osvDir(files: Record<string, string | Buffer>): Promise<string> {
  const dir = path.join(tmp, `osv-${n++}`);
  await mkdir(dir);
  for (const [name, content] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(dir, name)), { recursive: true });
    await writeFile(path.join(dir, name), content);
  }
  return dir;
}

function advisory(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id: 'TEST-1',
    modified: '2026-01-01T00:00:00Z',
    affected: [{ package: { ecosystem: 'Debian:12', name: 'openssl' }, ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }, { fixed: '3.0.15-1' }] }] }],
    ...over,
  };
}

const entry = (events: Record<string, string>[], versions: string[] = []) => ({
  ecosystem: 'Debian:12',
  name: 'x',
  ranges: [{ type: 'ECOSYSTEM', events: events as never }],
  versions,
  severities: [],
});

describe('CVSS v3 base score', () => {
  // Scores as NVD and the CVSS v3.1 specification's examples give them.
  const table: [string, number][] = [
    ['CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H', 9.8],
    ['CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H', 10],
    ['CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N', 7.5],
    ['CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H', 7.8],
    ['CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N', 6.1],
    ['CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:C/C:L/I:L/A:N', 6.4],
    ['CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:U/C:L/I:N/A:N', 3.1],
    ['CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:C/C:H/I:H/A:H', 9.9],
    ['CVSS:3.1/AV:L/AC:L/PR:H/UI:N/S:U/C:L/I:L/A:L', 4.2],
    ['CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:H/A:N', 7.4],
    ['CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:H/I:H/A:H', 9.6],
    ['CVSS:3.1/AV:L/AC:L/PR:H/UI:N/S:C/C:H/I:H/A:H', 8.2],
    ['CVSS:3.1/AV:P/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N', 4.6],
    ['CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:L/I:N/A:N', 5.8],
    ['CVSS:3.1/AV:N/AC:L/PR:L/UI:R/S:C/C:L/I:L/A:N', 5.4],
    ['CVSS:3.1/AV:L/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N', 0],
    ['CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/E:P/RL:O/RC:C', 9.8],
  ];
  for (const [v, want] of table) it(`${v} = ${want}`, () => assert.equal(cvss3BaseScore(v), want));

  it('rates per the specification', () => {
    assert.deepEqual([0, 0.1, 3.9, 4, 6.9, 7, 8.9, 9, 10].map(ratingOf), ['low', 'low', 'low', 'medium', 'medium', 'high', 'high', 'critical', 'critical']);
  });

  it('rounds up to one decimal without float error', () => {
    assert.equal(roundUp(4.0), 4.0);
    assert.equal(roundUp(4.02), 4.1);
    assert.equal(roundUp(4.000001), 4.0);
  });

  it('refuses vectors that are not v3 base vectors', () => {
    for (const v of [
      'AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H',
      'CVSS:2.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H',
      'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H',
      'CVSS:3.1/AV:N/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H',
      'CVSS:3.1/AV:X/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H',
      'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/ZZ:Q',
      'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/',
      'CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N',
      '',
    ]) {
      assert.equal(cvss3BaseScore(v), undefined, v);
    }
  });
});

describe('OSV range matching', () => {
  it('introduced/fixed: affected from introduced up to (not including) fixed', () => {
    const e = entry([{ introduced: '1.0-1' }, { fixed: '1.5-1' }]);
    assert.deepEqual(isAffected(e, '0.9-1', compareDebian), { affected: false });
    assert.deepEqual(isAffected(e, '1.0-1', compareDebian), { affected: true, fixed: '1.5-1' });
    assert.deepEqual(isAffected(e, '1.5-1~rc1', compareDebian), { affected: true, fixed: '1.5-1' });
    assert.deepEqual(isAffected(e, '1.5-1', compareDebian), { affected: false });
    assert.deepEqual(isAffected(e, '1:0.1', compareDebian), { affected: false });
  });

  it('introduced "0" is before everything; no fixed: every later version', () => {
    assert.equal(isAffected(entry([{ introduced: '0' }]), '0~~', compareDebian).affected, true);
    assert.equal(isAffected(entry([{ introduced: '0' }]), '99:1', compareDebian).affected, true);
  });

  it('last_affected is inclusive', () => {
    const e = entry([{ introduced: '0' }, { last_affected: '2.0-1' }]);
    assert.equal(isAffected(e, '2.0-1', compareDebian).affected, true);
    assert.equal(isAffected(e, '2.0-1+b1', compareDebian).affected, false);
  });

  it('several intervals in one range, events in any order', () => {
    const e = entry([{ fixed: '1.2' }, { introduced: '2.0' }, { introduced: '1.0' }, { fixed: '2.3' }]);
    assert.deepEqual(['0.9', '1.0', '1.1', '1.2', '1.9', '2.0', '2.2', '2.3', '3'].map((v) => isAffected(e, v, compareDebian).affected), [false, true, true, false, false, true, true, false, false]);
    assert.equal(isAffected(e, '2.1', compareDebian).fixed, '2.3');
  });

  it('versions[] match exactly (by ordering, so 1.0 = 1.00)', () => {
    const e = entry([], ['1.0-1', '1.1-1']);
    assert.equal(isAffected(e, '1.00-1', compareDebian).affected, true);
    assert.equal(isAffected(e, '1.0-2', compareDebian).affected, false);
  });

  it('ignores SEMVER and GIT ranges for OS packages', () => {
    const e = { ...entry([]), ranges: [{ type: 'GIT', events: [{ introduced: '0' }] as never }] };
    assert.equal(isAffected(e, '1.0', compareDebian).affected, false);
  });

  it('matches ecosystems with and without a release', () => {
    assert.equal(ecosystemMatches('Debian:12', 'Debian:12'), true);
    assert.equal(ecosystemMatches('Debian', 'Debian:12'), true);
    assert.equal(ecosystemMatches('Debian:11', 'Debian:12'), false);
    assert.equal(ecosystemMatches('Ubuntu:22.04:LTS', 'Ubuntu:22.04'), true);
    assert.equal(ecosystemMatches('Ubuntu:22.04:LTS', 'Ubuntu:22.0'), false);
    assert.equal(ecosystemMatches('Alpine:v3.19', 'Debian:12'), false);
  });
});

describe('matchPackages', () => {
  const deb = (name: string, version: string, source?: string, sourceVersion?: string): InstalledPackage => ({
    ecosystem: 'Debian:12',
    name,
    version,
    ...(source === undefined ? {} : { source }),
    ...(sourceVersion === undefined ? {} : { sourceVersion }),
    purl: `pkg:deb/debian/${name}@${version}`,
  });

  it('matches Debian advisories by source package and source version', async () => {
    const db = await loadOsvDatabase(OSV_FIXTURE_DIR);
    const findings = matchPackages(db, [
      deb('libssl3', '3.0.11-1~deb12u2', 'openssl'),
      // A binNMU: the binary's version differs, the source's is what advisories name.
      deb('libssl3-udeb', '3.0.11-1~deb12u2+b1', 'openssl', '3.0.15-1~deb12u1'),
      deb('zlib1g', '1:1.2.13.dfsg-2', 'zlib'),
      deb('curl', '7.88.1-10+deb12u5'),
      deb('bash', '5.2.15-2'),
    ]);
    assert.deepEqual(
      findings.map((f) => [f.id, f.package, f.severity, f.fixed]),
      [
        ['BERTH-TEST-0001', 'libssl3', 'critical', '3.0.15-1~deb12u1'],
        ['BERTH-TEST-0006', 'bash', 'medium', undefined],
      ],
    );
    assert.deepEqual(findings[0]!.aliases, ['CVE-2099-0001']);
  });

  it('takes the highest severity any source gives', async () => {
    const dir = await osvDir({
      'a.json': JSON.stringify(
        advisory({
          database_specific: { severity: 'LOW' },
          severity: [{ type: 'CVSS_V3', score: 'CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:U/C:L/I:N/A:N' }],
          affected: [{ ...(advisory().affected as object[])[0], ecosystem_specific: { urgency: 'high**' } }],
        }),
      ),
    });
    const [f] = matchPackages(await loadOsvDatabase(dir), [deb('openssl', '3.0.0-1')]);
    assert.equal(f?.severity, 'high');
  });

  it('scores a CVSS vector given per affected entry (OSV 1.5+)', async () => {
    const base = (advisory().affected as Record<string, unknown>[])[0]!;
    const dir = await osvDir({ 'a.json': JSON.stringify(advisory({ affected: [{ ...base, severity: [{ type: 'CVSS_V3', score: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N' }] }] })) });
    assert.equal(matchPackages(await loadOsvDatabase(dir), [deb('openssl', '3.0.0-1')])[0]?.severity, 'high');
  });

  it('gives "unknown" when an advisory says nothing about severity', async () => {
    const dir = await osvDir({ 'a.json': JSON.stringify(advisory()) });
    assert.equal(matchPackages(await loadOsvDatabase(dir), [deb('openssl', '3.0.0-1')])[0]?.severity, 'unknown');
  });

  it('reads advisories in subdirectories and skips withdrawn ones and non-JSON files', async () => {
    const dir = await osvDir({
      'Debian/a.json': JSON.stringify(advisory()),
      'Debian/b.json': JSON.stringify(advisory({ id: 'TEST-2', withdrawn: '2026-02-01T00:00:00Z' })),
      'README': 'not an advisory',
    });
    const db = await loadOsvDatabase(dir);
    assert.equal(db.advisories, 1);
    assert.deepEqual(matchPackages(db, [deb('openssl', '1.0-1')]).map((f) => f.id), ['TEST-1']);
  });
});

describe('loading a hostile advisory database fails closed', () => {
  const bad: [string, string | Buffer, RegExp][] = [
    ['not JSON', '{"id": ', /invalid advisory .*bad\.json/],
    ['duplicate members', '{"id": "A", "id": "B", "modified": "x"}', /duplicate member/],
    ['not UTF-8', Buffer.from([0x7b, 0xff, 0x7d]), /not valid UTF-8/],
    ['a wrong type', JSON.stringify(advisory({ affected: { package: 1 } })), /affected must be an array/],
    ['an event with two kinds', JSON.stringify(advisory({ affected: [{ package: { ecosystem: 'Debian:12', name: 'x' }, ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0', fixed: '1' }] }] }] })), /exactly one of/],
    ['an invalid CVSS vector', JSON.stringify(advisory({ severity: [{ type: 'CVSS_V3', score: 'CVSS:3.1/AV:Q' }] })), /not a CVSS v3 vector/],
    ['an unknown severity word', JSON.stringify(advisory({ database_specific: { severity: 'APOCALYPTIC' } })), /not a known severity/],
    ['a bad id', JSON.stringify(advisory({ id: '../../etc' })), /id has characters/],
    ['nesting too deep', '['.repeat(100) + ']'.repeat(100), /nesting deeper/],
  ];
  for (const [what, content, re] of bad) {
    it(`refuses ${what}`, async () => {
      const dir = await osvDir({ 'good.json': JSON.stringify(advisory()), 'bad.json': content });
      await assert.rejects(loadOsvDatabase(dir), (e: Error & { code?: string }) => {
        assert.equal(e.code, 'SCAN_FAILED');
        assert.match(e.message, re);
        return true;
      });
    });
  }

  it('refuses a file over the size limit', async () => {
    const dir = await osvDir({ 'big.json': JSON.stringify(advisory({ details: 'x'.repeat(2000) })) });
    await assert.rejects(loadOsvDatabase(dir, { fileBytes: 1000, files: 10, totalBytes: 1e6, depth: 2 }), /too large/);
  });

  it('refuses a symlink in place of an advisory (files are read, never followed)', async () => {
    const dir = await osvDir({});
    await symlink('/etc/passwd', path.join(dir, 'link.json'));
    await assert.rejects(loadOsvDatabase(dir), /link\.json: it is a symbolic link/);
  });

  it('refuses a missing directory', async () => {
    await assert.rejects(loadOsvDatabase(path.join(tmp, 'nope')), (e: Error & { code?: string }) => e.code === 'SCAN_FAILED');
  });

  it('parseAdvisory leaves members berth does not use unchecked', () => {
    const a = parseAdvisory(advisory({ credits: [{ name: 1 }], database_specific: { source: 'https://example', cwe_ids: [] } }) as never, 'f');
    assert.equal(a?.id, 'TEST-1');
  });
});
