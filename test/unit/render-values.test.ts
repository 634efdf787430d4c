import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ALL_CAPABILITIES, FORCED_VARIABLES, parseSetOptions, resolveValues, type ValuesInput } from '../../src/render/values.ts';

const base: ValuesInput = {
  name: 'etcd',
  destDir: '/var/lib/berth/containers/etcd',
  imageName: 'docker://registry.example/etcd:latest',
  imageId: 'sha256:abc',
  runtime: '/usr/sbin/runc',
  set: {},
  uuid: '11111111-2222-4333-8444-555555555555',
  uid: 0,
  gid: 0,
};

describe('--set parsing', () => {
  it('splits at the first =, keeps empty values, and a later KEY wins', () => {
    assert.deepEqual(parseSetOptions(['A=1', 'B=x=y', 'C=', 'A=2']), { A: '2', B: 'x=y', C: '' });
  });
  it('refuses a missing =, a non-identifier key and __proto__', () => {
    assert.throws(() => parseSetOptions(['NOEQUALS']), { code: 'USAGE', message: /expected KEY=VALUE/ });
    assert.throws(() => parseSetOptions(['1A=x']), { code: 'USAGE', message: /not a variable name/ });
    assert.throws(() => parseSetOptions(['A-B=x']), { code: 'USAGE', message: /not a variable name/ });
    assert.throws(() => parseSetOptions(['__proto__=x']), { code: 'USAGE' });
  });
  it('refuses every forced variable, naming it', () => {
    for (const key of FORCED_VARIABLES) {
      assert.throws(() => parseSetOptions([`${key}=/x`]), (e: Error & { code?: string }) => e.code === 'USAGE' && e.message.includes(`--set ${key}`) && e.message.includes('cannot be overridden'));
    }
  });
  it('refuses newlines, carriage returns and NUL in values', () => {
    for (const v of ['a\nb', 'a\rb', 'a\0b']) assert.throws(() => parseSetOptions([`X=${v}`]), { code: 'USAGE', message: /newline or NUL/ });
  });
});

describe('template values', () => {
  it('has atomic\'s defaults and berth\'s commands', () => {
    const { values, warnings } = resolveValues(base);
    assert.deepEqual(warnings, []);
    assert.equal(values['RUN_DIRECTORY'], '/run');
    assert.equal(values['STATE_DIRECTORY'], '/var/lib');
    assert.equal(values['CONF_DIRECTORY'], '/etc');
    assert.equal(values['PIDFILE'], '/run/container-etcd.pid');
    assert.equal(values['UUID'], base.uuid);
    assert.equal(values['RUNTIME'], '/usr/sbin/runc');
    assert.equal(values['EXEC_START'], '/usr/sbin/runc run --detach --pid-file /run/container-etcd.pid --bundle /var/lib/berth/containers/etcd etcd');
    assert.equal(values['EXEC_STARTPRE'], '/usr/sbin/runc delete --force etcd');
    assert.equal(values['EXEC_STOPPOST'], '/usr/sbin/runc delete --force etcd');
    assert.equal(values['EXEC_STOP'], '/usr/sbin/runc kill etcd TERM');
    assert.equal(values['DESTDIR'], base.destDir);
    assert.equal(values['NAME'], 'etcd');
    assert.equal(values['HOST_UID'], '0');
    assert.equal(values['IMAGE_NAME'], base.imageName);
    assert.equal(values['IMAGE_ID'], 'sha256:abc');
  });
  it('gives a fresh UUID by default', () => {
    const { uuid: _, ...rest } = base;
    const a = resolveValues(rest).values['UUID'];
    const b = resolveValues(rest).values['UUID'];
    assert.match(a!, /^[0-9a-f-]{36}$/);
    assert.notEqual(a, b);
  });
  it('ALL_PROCESS_CAPABILITIES is a JSON list body of every capability, on one line', () => {
    const caps = resolveValues(base).values['ALL_PROCESS_CAPABILITIES']!;
    assert.deepEqual(JSON.parse(`[${caps}]`), [...ALL_CAPABILITIES]);
    assert.ok(!caps.includes('\n'));
  });
  it('--set beats the image default, which beats berth\'s default (atomic had the last two reversed)', () => {
    const imageDefaults = { CONF_DIRECTORY: '/etc/image', STATE_DIRECTORY: '/srv/state', PORT: '1' };
    const { values } = resolveValues({ ...base, imageDefaults, set: { STATE_DIRECTORY: '/srv/set', PORT: '2' } });
    assert.equal(values['CONF_DIRECTORY'], '/etc/image');
    assert.equal(values['STATE_DIRECTORY'], '/srv/set');
    assert.equal(values['PORT'], '2');
  });
  it('derives PIDFILE from the final RUN_DIRECTORY unless PIDFILE itself is given; EXEC_START follows', () => {
    assert.equal(resolveValues({ ...base, set: { RUN_DIRECTORY: '/run/alt/' } }).values['PIDFILE'], '/run/alt/container-etcd.pid');
    const { values } = resolveValues({ ...base, set: { PIDFILE: '/run/etcd.pid' } });
    assert.equal(values['PIDFILE'], '/run/etcd.pid');
    assert.match(values['EXEC_START']!, /--pid-file \/run\/etcd\.pid /);
  });
  it('values do not refer to each other', () => {
    const { values } = resolveValues({ ...base, set: { GREETING: 'hello $NAME' } });
    assert.equal(values['GREETING'], 'hello $NAME');
  });
  it('ignores an image default for a forced variable, with a warning', () => {
    const { values, warnings } = resolveValues({ ...base, imageDefaults: { NAME: 'evil', DESTDIR: '/' } });
    assert.equal(values['NAME'], 'etcd');
    assert.equal(values['DESTDIR'], base.destDir);
    assert.equal(warnings.length, 2);
  });
  it('refuses relative or unnormalised directories and PID files', () => {
    for (const [k, v] of [['RUN_DIRECTORY', 'run'], ['STATE_DIRECTORY', '/var/../etc'], ['PIDFILE', '/run/x/../../etc/passwd'], ['CONF_DIRECTORY', '/etc/a b'], ['RUNTIME', 'runc']] as const) {
      assert.throws(() => resolveValues({ ...base, set: { [k]: v } }), (e: Error) => e.message.includes(k) && e.message.includes(`--set ${k}`));
    }
    assert.throws(() => resolveValues({ ...base, imageDefaults: { RUN_DIRECTORY: 'relative' } }), /manifest.json default for RUN_DIRECTORY/);
  });
  it('refuses newline values from the image and the command line', () => {
    assert.throws(() => resolveValues({ ...base, imageDefaults: { X: 'a\nExecStartPre=/bin/evil' } }), { code: 'USAGE', message: /newline/ });
    assert.throws(() => resolveValues({ ...base, set: { X: 'a\nb' } }), { code: 'USAGE', message: /newline/ });
    assert.throws(() => resolveValues({ ...base, set: { NAME: 'x' } }), { code: 'USAGE', message: /--set NAME/ });
  });
  it('a RUNTIME other than the one found is used, with a warning', () => {
    const { values, warnings } = resolveValues({ ...base, set: { RUNTIME: '/usr/bin/crun' } });
    assert.match(values['EXEC_START']!, /^\/usr\/bin\/crun run /);
    assert.match(warnings[0]!, /RUNTIME is \/usr\/bin\/crun/);
  });
});
