import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { renderUnit } from '../../src/render/service.ts';
import { resolveValues } from '../../src/render/values.ts';
import { unitNameFor } from '../../src/render/ordering.ts';
import { UNIT_KEYS, REFUSED_KEYS } from '../../src/render/unit-keys.ts';

const { values } = resolveValues({
  name: 'web',
  destDir: '/var/lib/berth/containers/web',
  imageName: 'oci:/images:web',
  imageId: 'sha256:1',
  runtime: '/usr/sbin/runc',
  set: {},
  uuid: 'u',
  uid: 0,
  gid: 0,
});

describe('unit rendering', () => {
  it('the built-in template passes its own checks unchanged', async () => {
    const { unit, warnings } = await renderUnit({ values, ordering: { requiredBy: ['docker'] } });
    assert.deepEqual(warnings, []);
    assert.equal(unit.get('Service', 'ExecStart'), values['EXEC_START']);
    assert.deepEqual(unit.getAll('Service', 'ExecStartPre'), [`-${values['EXEC_STARTPRE']}`]);
    assert.equal(unit.get('Service', 'PIDFile'), '/run/container-web.pid');
    assert.deepEqual(unit.getAll('Install', 'RequiredBy'), ['docker.service']);
  });

  it('values cannot smuggle lines into the unit', async () => {
    const template = '[Unit]\nDescription=$DESC\n[Service]\nExecStart=$EXEC_START\n';
    await assert.rejects(renderUnit({ template, values: { ...values, DESC: 'x\n[Service]\nExecStartPre=/bin/evil' } }), { code: 'USAGE', message: /newline/ });
    await assert.rejects(renderUnit({ template, values: { ...values, DESC: 'x\rExecStartPre=/bin/evil' } }), /newline/);
    const { unit } = await renderUnit({ template, values: { ...values, DESC: 'x [Service] ExecStartPre=/bin/evil' } });
    assert.deepEqual(unit.getAll('Service', 'ExecStartPre'), [`-${values['EXEC_STARTPRE']}`]);
    assert.equal(unit.get('Unit', 'Description'), 'x [Service] ExecStartPre=/bin/evil');
  });

  it('recognises $EXEC_START behind systemd prefixes', async () => {
    const { unit } = await renderUnit({ template: '[Service]\nExecStart=-$EXEC_START\n', values });
    assert.equal(unit.get('Service', 'Type'), 'forking');
  });

  it('a second ExecStart= is refused unless oneshot', async () => {
    await assert.rejects(renderUnit({ template: '[Service]\nExecStart=$EXEC_START\nExecStart=/bin/true\n', values }), /2 ExecStart= lines/);
  });
});

describe('unit names for ordering flags', () => {
  it('adds .service to bare names only', () => {
    assert.equal(unitNameFor('etcd'), 'etcd.service');
    assert.equal(unitNameFor('etcd-3.4'), 'etcd-3.4.service');
    assert.equal(unitNameFor('network-online.target'), 'network-online.target');
    assert.equal(unitNameFor('getty@tty1.service'), 'getty@tty1.service');
    assert.equal(unitNameFor('var-lib.mount'), 'var-lib.mount');
    assert.throws(() => unitNameFor('a b'), /not a unit name/);
    assert.throws(() => unitNameFor(''), /not a unit name/);
  });
});

describe('key tables', () => {
  it('refused keys are known keys, so that the reason is what users see', () => {
    for (const [section, keys] of Object.entries(REFUSED_KEYS) as [keyof typeof UNIT_KEYS, Record<string, string>][]) {
      for (const key of Object.keys(keys)) assert.ok(UNIT_KEYS[section].has(key), `${section}.${key}`);
    }
  });
});
