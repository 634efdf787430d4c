import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { planHostFiles, sha256Hex, type PlannedHostFile } from '../../src/render/hostfs-plan.ts';
import type { HostfsEntry } from '../../src/render/exports.ts';

const values = { NAME: 'etcd', CONF_DIRECTORY: '/etc', RUNTIME: '/usr/sbin/runc' };
const file = (p: string, content: string, mode = 0o644): HostfsEntry => ({ type: 'file', path: p, mode, content: Buffer.from(content) });
const dir = (p: string): HostfsEntry => ({ type: 'dir', path: p, mode: 0o755 });
const paths = (plan: PlannedHostFile[]) => plan.map((f) => `${f.type} ${f.path}`);

describe('hostfs plan', () => {
  const entries: HostfsEntry[] = [
    dir('/etc'),
    dir('/etc/etcd'),
    file('/etc/etcd/etcd.conf', 'ETCD_LOG_LEVEL=info\n'),
    dir('/usr'),
    dir('/usr/local'),
    dir('/usr/local/bin'),
    file('/usr/local/bin/etcdctl', '#!/bin/sh\nexec $RUNTIME exec $NAME etcdctl "$@"\n', 0o755),
    { type: 'symlink', path: '/usr/local/bin/ec', target: 'etcdctl' },
  ];

  it('renames (values substituted) and templates files, hashing the final content', () => {
    const { plan, warnings } = planHostFiles({
      entries,
      renameFiles: { '/etc/etcd/etcd.conf': '${CONF_DIRECTORY}/etcd/${NAME}.conf', '/usr/local/bin/etcdctl': '/usr/local/bin/etcdctl-$NAME' },
      installedFilesTemplate: ['/usr/local/bin/etcdctl'],
      values,
    });
    assert.deepEqual(warnings, []);
    assert.deepEqual(paths(plan), ['dir /etc', 'dir /etc/etcd', 'file /etc/etcd/etcd.conf', 'dir /usr', 'dir /usr/local', 'dir /usr/local/bin', 'symlink /usr/local/bin/ec', 'file /usr/local/bin/etcdctl-etcd']);
    const ctl = plan.find((f) => f.path === '/usr/local/bin/etcdctl-etcd');
    assert.ok(ctl?.type === 'file');
    assert.equal(ctl.content.toString(), '#!/bin/sh\nexec /usr/sbin/runc exec etcd etcdctl "$@"\n');
    assert.equal(ctl.sha256, sha256Hex(ctl.content));
    assert.equal(ctl.mode, 0o755);
    assert.equal(ctl.templated, true);
    const conf = plan.find((f) => f.path === '/etc/etcd/etcd.conf');
    assert.ok(conf?.type === 'file' && !conf.templated && conf.source === '/etc/etcd/etcd.conf');
  });

  it('a renamed directory moves its content (atomic\'s prefix rename); a template may be named by its new path', () => {
    const { plan } = planHostFiles({ entries, renameFiles: { '/etc/etcd': '/etc/$NAME-conf' }, installedFilesTemplate: ['/etc/etcd-conf/etcd.conf'], values: { ...values } });
    assert.ok(paths(plan).includes('file /etc/etcd-conf/etcd.conf'));
    assert.ok(paths(plan).includes('dir /etc/etcd-conf'));
    const conf = plan.find((f) => f.path === '/etc/etcd-conf/etcd.conf');
    assert.ok(conf?.type === 'file' && conf.templated);
  });

  it('refuses ".." in hostfs paths, renameFiles keys and substituted values', () => {
    assert.throws(() => planHostFiles({ entries: [file('/etc/../root/.ssh/authorized_keys', 'k')], values }), { code: 'UNSAFE_PATH', message: /contains "\.\."/ });
    assert.throws(() => planHostFiles({ entries, renameFiles: { '/etc/../etc/etcd/etcd.conf': '/x' }, values }), { code: 'UNSAFE_PATH', message: /renameFiles.*contains "\.\."/ });
    assert.throws(() => planHostFiles({ entries, renameFiles: { '/etc/etcd/etcd.conf': '/etc/$NAME/../../root/x' }, values }), { code: 'UNSAFE_PATH', message: /contains "\.\."/ });
    assert.throws(() => planHostFiles({ entries, renameFiles: { '/etc/etcd/etcd.conf': '$X/x' }, values: { ...values, X: '../..' } }), { code: 'UNSAFE_PATH' });
    assert.throws(() => planHostFiles({ entries, renameFiles: { '/etc/etcd/etcd.conf': 'relative/x' }, values }), /not an absolute path/);
  });

  it('refuses destinations where they would add units, drop-ins or tmpfiles behind berth\'s checks', () => {
    for (const dest of ['/etc/systemd/system/etcd.service.d/override.conf', '/etc/systemd/system/evil.service', '/usr/lib/systemd/system/x.service', '/etc/tmpfiles.d/x.conf', '/proc/sys/kernel/x']) {
      assert.throws(() => planHostFiles({ entries, renameFiles: { '/etc/etcd/etcd.conf': dest }, values }), { code: 'UNSAFE_PATH', message: /which image files may not change/ }, dest);
    }
    assert.throws(() => planHostFiles({ entries: [file('/etc/systemd/system/x.service', '[Service]\n')], values }), /may not change/);
  });

  it('refuses unit lines smuggled through renameFiles values or --set values', () => {
    assert.throws(() => planHostFiles({ entries, renameFiles: { '/etc/etcd/etcd.conf': '/etc/x\n[Service]\nExecStartPre=/bin/evil' }, values }), /control character|newline/);
    assert.throws(() => planHostFiles({ entries, renameFiles: { '/etc/etcd/etcd.conf': '/etc/$NAME.conf' }, values: { ...values, NAME: 'x\nExecStartPre=/bin/evil' } }), /newline/);
  });

  it('names the variable a rename or a file template is missing', () => {
    assert.throws(() => planHostFiles({ entries, renameFiles: { '/etc/etcd/etcd.conf': '/etc/$MISSING' }, values }), /renameFiles\["\/etc\/etcd\/etcd.conf"\]: variable \$MISSING has no value/);
    assert.throws(() => planHostFiles({ entries: [file('/etc/a', 'x=$NOPE')], installedFilesTemplate: ['/etc/a'], values }), /\/exports\/hostfs\/etc\/a: variable \$NOPE has no value/);
  });

  it('refuses two entries with one destination, drops setuid bits, warns about unused renames and templates', () => {
    assert.throws(() => planHostFiles({ entries: [file('/etc/a', '1'), file('/etc/b', '2')], renameFiles: { '/etc/b': '/etc/a' }, values }), /goes to \/etc\/a/);
    const { plan, warnings } = planHostFiles({ entries: [file('/usr/local/bin/su', 'x', 0o4755)], renameFiles: { '/nope': '/x' }, installedFilesTemplate: ['/also/nope'], values });
    assert.equal(plan[0]?.type === 'file' && plan[0].mode, 0o755);
    assert.equal(warnings.length, 3);
  });
});
