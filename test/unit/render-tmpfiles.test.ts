import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkTmpfiles, renderTmpfiles, tmpfilesForMissing } from '../../src/render/tmpfiles.ts';

describe('tmpfiles', () => {
  const values = { STATE_DIRECTORY: '/var/lib', RUN_DIRECTORY: '/run', NAME: 'etcd', HOST_UID: '0', HOST_GID: '0' };
  it('renders the image template (atomic\'s etcd style)', () => {
    const t = 'd    ${STATE_DIRECTORY}/etcd/${NAME}.etcd 0700 ${HOST_UID} ${HOST_GID} - -\nZ ${STATE_DIRECTORY}/etcd/${NAME}.etcd 0700 - - - -\nd ${RUN_DIRECTORY}/${NAME} - - - - -\n# comment $$x\n\n';
    assert.equal(renderTmpfiles(t, values), 'd    /var/lib/etcd/etcd.etcd 0700 0 0 - -\nZ /var/lib/etcd/etcd.etcd 0700 - - - -\nd /run/etcd - - - - -\n# comment $x\n\n');
  });
  it('accepts every type with its modifiers and quoted paths', () => {
    checkTmpfiles('L+ /usr/local/x - - - - /y\nd! /run/a\nf~ /run/b - - - - YQ==\nw- "/run/with space/x"\nq /var/lib/q\n', 'f');
  });
  it('refuses unknown types, relative paths, ".." and shallow recursive or removing lines', () => {
    for (const [line, re] of [
      ['y /run/x', /unknown line type "y"/],
      ['d run/x', /not absolute/],
      ['d %t/x', /not absolute/],
      ['d /run/../etc', /contains "\.\."/],
      ['d "/run/x/../../etc"', /contains "\.\."/],
      ['R /var', /whole top-level directory/],
      ['Z /etc 0700 root root', /whole top-level directory/],
      ['d', /at least a type and a path/],
    ] as const) {
      assert.throws(() => checkTmpfiles(`# ok\n${line}\n`, 'tmpfiles.template'), { code: 'USAGE', message: new RegExp(`tmpfiles.template, line 2: .*${re.source}`) }, line);
    }
  });
  it('a value cannot add a line', () => {
    assert.throws(() => renderTmpfiles('d ${RUN_DIRECTORY}/x\n', { RUN_DIRECTORY: '/run\nR /' }), /newline/);
    assert.throws(() => renderTmpfiles('d /run/$X\n', { X: '../../etc' }), /contains "\.\."/);
  });
  it('generates d lines for missing bind-mount sources, quoting and escaping', () => {
    assert.equal(tmpfilesForMissing([]), undefined);
    const text = tmpfilesForMissing(['/var/lib/app', '/run/a b', '/run/100%', '/var/lib/app'])!;
    assert.deepEqual(text.split('\n').slice(1), ['d /var/lib/app 0700 root root -', 'd "/run/a b" 0700 root root -', 'd /run/100%% 0700 root root -', '']);
  });
  it('recreates volatile sources that exist now without changing their mode or owner', () => {
    const text = tmpfilesForMissing(['/var/lib/app'], ['/run/systemd', '/var/lib/app'])!;
    assert.deepEqual(text.split('\n').slice(1), ['d /var/lib/app 0700 root root -', 'd /run/systemd - - - -', '']);
  });
});
