import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { compareAlpine, compareDebian, versionCompareFor } from '../../src/scan/version.ts';

/** Versions with every feature dpkg orders: epochs, revisions, "~", "+", letters, leading zeros, long numbers. */
const DEBIAN_CORPUS = [
  '0', '0.0', '00', '1', '1.0', '1.0-0', '1.0-1', '1.0-1.1', '1.0-1~bpo1', '1.0~rc1', '1.0~rc1-1', '1.0~~', '1.0~', '1.0a', '1.0+', '1.0+b1',
  '1.0.0', '1.00', '1.01', '1.1', '1.10', '1.9', '1:0.9', '1:1.0', '2:0', '10:1.0', '0:1.0', '1.0-1+deb12u1', '1.0-1+deb12u10',
  '1.0-1+deb12u2', '1.0-1~deb12u1', '3.0.11-1~deb12u2', '3.0.15-1~deb12u1', '3.0.15-1', '1:1.2.13.dfsg-1', '1:1.2.13.dfsg-2',
  '1.2.13.dfsg-1', '7.88.1-10', '7.88.1-10+deb12u5', '7.88.1-10+b1', '2.36-9+deb12u4', '2.36-9', '5.2.15-2', '5.2.15-2+b2',
  '1.0-a', '1.0-A', '1.0-.', '1.0a~', 'a', 'A', 'a1', '1a', '1.0.a', '1.0-1-1', '1.0-1-2', '20231231', '20240101~git1',
  '99999999999999999999', '100000000000000000000', '1.2.3-4ubuntu0.1', '1.2.3-4ubuntu0.10', '1.2.3-4ubuntu0.9', '1.0+dfsg', '1.0+dfsg-1',
];

describe('compareDebian', () => {
  it('orders a corpus exactly as dpkg --compare-versions on this host does', (t) => {
    const probe = spawnSync('dpkg', ['--compare-versions', '1', 'lt', '2']);
    if (probe.error !== undefined) return t.skip('dpkg is not installed');
    const dpkg = (a: string, op: 'lt' | 'eq', b: string): boolean => spawnSync('dpkg', ['--compare-versions', a, op, b]).status === 0;
    // Sorted by berth, every neighbour must be "lt" or "eq" for dpkg too: with both orders total,
    // that makes them the same order, at one dpkg call per neighbour instead of one per pair.
    const sorted = [...DEBIAN_CORPUS].sort(compareDebian);
    const mismatches: string[] = [];
    for (let i = 1; i < sorted.length; i++) {
      const [a, b] = [sorted[i - 1]!, sorted[i]!];
      const ours = compareDebian(a, b);
      if (ours < 0 && !dpkg(a, 'lt', b)) mismatches.push(`${a} < ${b} for berth, not for dpkg`);
      if (ours === 0 && !dpkg(a, 'eq', b)) mismatches.push(`${a} = ${b} for berth, not for dpkg`);
    }
    // And a spread of far-apart pairs, in both directions.
    for (let i = 0; i < sorted.length; i += 7) {
      const [a, b] = [sorted[i]!, sorted[sorted.length - 1 - i]!];
      const ours = Math.sign(compareDebian(b, a));
      const theirs = dpkg(b, 'lt', a) ? -1 : dpkg(b, 'eq', a) ? 0 : 1;
      if (ours !== theirs) mismatches.push(`${b} vs ${a}: berth ${ours}, dpkg ${theirs}`);
    }
    assert.deepEqual(mismatches, []);
  });

  it('puts ~ before everything, even the end, and compares epochs first', () => {
    assert.ok(compareDebian('1.0~rc1', '1.0') < 0);
    assert.ok(compareDebian('1.0~~', '1.0~') < 0);
    assert.ok(compareDebian('1.0', '1.0+b1') < 0);
    assert.ok(compareDebian('1:0.1', '9.9') > 0);
    assert.ok(compareDebian('3.0.11-1~deb12u2', '3.0.15-1~deb12u1') < 0);
    assert.equal(compareDebian('1.0', '1.00'), 0);
    assert.equal(compareDebian('0:1.0', '1.0'), 0);
  });
});

/** Orderings apk itself defines (apk-tools' version tests and Alpine's packages), one "a OP b" each. */
const APK_TABLE: [string, '<' | '=' | '>', string][] = [
  ['1.0', '<', '1.0.1'],
  ['1.0', '>', '1'],
  ['1.0', '=', '1.0'],
  ['1.2.3', '<', '1.2.10'],
  ['1.01', '<', '1.1'],
  ['1.001', '<', '1.01'],
  ['1.0_alpha', '<', '1.0'],
  ['1.0_alpha', '<', '1.0'],
  ['1.0_alpha', '<', '1.0_alpha2'],
  ['1.0_alpha2', '<', '1.0_beta'],
  ['1.0_beta', '<', '1.0_pre'],
  ['1.0_pre', '<', '1.0_rc'],
  ['1.0_rc1', '<', '1.0'],
  ['1.0', '<', '1.0_p1'],
  ['1.0_p1', '<', '1.0_p2'],
  ['1.0_p9', '<', '1.0_p10'],
  ['1.0_cvs', '<', '1.0_svn'],
  ['1.0_git', '<', '1.0_hg'],
  ['1.0_hg', '<', '1.0_p'],
  ['1.0', '<', '1.0a'],
  ['1.0a', '<', '1.0b'],
  ['1.0b', '<', '1.1'],
  ['1.0-r0', '<', '1.0-r1'],
  ['1.0-r9', '<', '1.0-r10'],
  ['1.0', '<', '1.0-r1'],
  ['1.0-r1', '<', '1.0.1'],
  ['1.0_rc1-r5', '<', '1.0-r0'],
  ['1.36.1-r15', '<', '1.36.1-r16'],
  ['1.2.4_git20230717-r4', '>', '1.2.4-r4'],
  ['1.2.4_git20230717-r4', '<', '1.2.5-r0'],
  ['3.1.4-r5', '<', '3.1.4-r6'],
  ['1.0.0_pre20191002222144-r0', '<', '1.0.0_pre20210530193627-r0'],
  ['2.1.9.200602141850', '>', '2.1.9.20060214185'],
  ['20060720', '>', '3.0.20060720'],
  ['006', '>', '1.0.0'],
  ['0.1.0_alpha_pre2', '<', '0.1.0_alpha'],
];

describe('compareAlpine', () => {
  for (const [a, op, b] of APK_TABLE) {
    it(`${a} ${op} ${b}`, () => {
      const want = op === '<' ? -1 : op === '>' ? 1 : 0;
      assert.equal(Math.sign(compareAlpine(a, b)), want);
      assert.equal(Math.sign(compareAlpine(b, a)), -want || 0);
    });
  }

  it('is total on invalid versions (no throw, antisymmetric)', () => {
    const odd = ['', '-', '_', '1..2', '1.0-rx', '1.0_foo', 'abc', '1.0bc', '-r1', '1__2', '9'.repeat(200)];
    for (const a of odd) for (const b of odd) assert.equal(Math.sign(compareAlpine(a, b)), -Math.sign(compareAlpine(b, a)) || 0, `${a} vs ${b}`);
  });
});

describe('versionCompareFor', () => {
  it('picks dpkg for Debian and Ubuntu, apk for Alpine, nothing for others', () => {
    assert.equal(versionCompareFor('Debian:12'), compareDebian);
    assert.equal(versionCompareFor('Ubuntu:22.04:LTS'), compareDebian);
    assert.equal(versionCompareFor('Alpine:v3.19'), compareAlpine);
    assert.equal(versionCompareFor('PyPI'), undefined);
  });
});
