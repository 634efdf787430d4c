import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { renderDefaultConfig, validateConfig, type RuntimeSpec } from '../../src/render/oci-config.ts';
import { renderDefaultUnit } from '../../src/render/service.ts';
import { substitute, templateVariables } from '../../src/render/template.ts';
import { execLine, UnitFile } from '../../src/render/unit-file.ts';
import { digestOf } from '../../src/image/digest.ts';

describe('string.Template substitution', () => {
  it('replaces $X, ${X} and $$', () => {
    assert.equal(substitute('a=$A b=${B}c $$D', { A: '1', B: '2' }, 't'), 'a=1 b=2c $D');
    assert.deepEqual(templateVariables('$A ${B} $$C $A'), ['A', 'B']);
  });
  it('names the file and the variable when one is missing, and refuses a bad placeholder', () => {
    assert.throws(() => substitute('x=$MISSING', {}, 'service.template'), /service.template: variable \$MISSING has no value/);
    assert.throws(() => substitute('x=$ 1', {}, 'f'), /f, line 1: invalid placeholder/);
  });
});

describe('unit file model', () => {
  const text = '# head\n[Unit]\nDescription=x\nAfter=a.service\nAfter=b.service\n\n[Service]\n; note\nExecStart=/bin/true \\\n  --flag\nEnvironment=A=1\nEnvironment=\nEnvironment=B=2\n';
  it('round-trips comments, order and repeated keys', () => {
    const u = UnitFile.parse(text);
    assert.deepEqual(u.getAll('Unit', 'After'), ['a.service', 'b.service']);
    assert.equal(u.get('Service', 'ExecStart'), '/bin/true  --flag');
    assert.equal(u.toString(), text.replace('/bin/true \\\n  --flag', '/bin/true  --flag'));
  });
  it('treats an empty assignment as a list reset', () => {
    assert.deepEqual(UnitFile.parse(text).getAll('Service', 'Environment'), ['B=2']);
  });
  it('refuses values that would inject lines', () => {
    assert.throws(() => new UnitFile().set('Service', 'ExecStart', '/bin/true\nExecStartPre=/bin/evil'), { code: 'USAGE' });
  });
  it('quotes exec arguments, escaping specifiers and variables', () => {
    assert.equal(execLine(['/usr/sbin/runc', 'run', 'a b', '100%', '$HOME']), '/usr/sbin/runc run "a b" 100%% "$$HOME"');
  });
});

describe('default rendering', () => {
  const image = { architecture: 'amd64', os: 'linux', config: { Cmd: ['httpd', '-f'], Entrypoint: ['/bin/env'], Env: ['PATH=/bin', 'X=1'], WorkingDir: '/www', User: '1000:1000' }, rootfs: { type: 'layers' as const, diff_ids: [digestOf('x')] } };
  it('runs Entrypoint+Cmd read-only, in the service cgroup, on the host network', async () => {
    const spec = await renderDefaultConfig({ name: 'web', image });
    assert.deepEqual(spec.process.args, ['/bin/env', 'httpd', '-f']);
    assert.deepEqual(spec.process.env, ['PATH=/bin', 'X=1']);
    assert.equal(spec.process.cwd, '/www');
    assert.deepEqual(spec.process.user, { uid: 1000, gid: 1000 });
    assert.equal(spec.root.readonly, true);
    assert.equal(spec.linux?.cgroupsPath, '/system.slice/web.service/container');
    assert.ok(!spec.linux?.namespaces?.some((n) => n.type === 'network'), 'a system container shares the host network');
  });
  it('refuses writable roots and empty commands', async () => {
    const spec = await renderDefaultConfig({ name: 'web', image });
    assert.throws(() => validateConfig({ ...spec, root: { path: 'rootfs', readonly: false } } as RuntimeSpec, 'c'), /readonly/);
    assert.throws(() => validateConfig({ ...spec, root: { path: '/', readonly: true } } as RuntimeSpec, 'c'), /root.path/);
    await assert.rejects(renderDefaultConfig({ name: 'web', image: { ...image, config: {} } }), /no Entrypoint or Cmd/);
    await assert.rejects(renderDefaultConfig({ name: 'web', image: { ...image, config: { Cmd: ['x'], User: 'www-data' } } }), /numeric/);
  });
  it('renders the built-in unit and refuses newline values', async () => {
    const values = { NAME: 'web', IMAGE_NAME: 'oci:/x:web', PIDFILE: '/run/berth/web/pid', EXEC_START: '/usr/sbin/runc run web', EXEC_STARTPRE: '/usr/sbin/runc delete --force web', EXEC_STOPPOST: '/usr/sbin/runc delete --force web', DESTDIR: '/var/lib/berth/containers/web' };
    const unit = await renderDefaultUnit(values);
    assert.equal(unit.get('Service', 'ExecStart'), '/usr/sbin/runc run web');
    assert.equal(unit.get('Service', 'Type'), 'forking');
    assert.equal(unit.get('Install', 'WantedBy'), 'multi-user.target');
    await assert.rejects(renderDefaultUnit({ ...values, NAME: 'web\nExecStartPre=/bin/evil' }), /newline/);
  });
});
