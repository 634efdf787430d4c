import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { digestOf } from '../../src/image/digest.ts';
import { bindMountSources, renderConfig, type RuntimeSpec } from '../../src/render/oci-config.ts';
import { configTemplate, bindMount } from '../fixtures/system-images.ts';

const image = { architecture: 'amd64', os: 'linux', config: { Cmd: ['/bin/true'] }, rootfs: { type: 'layers' as const, diff_ids: [digestOf('x')] } };
const template = configTemplate({ args: ['/usr/bin/run.sh'], env: ['RECEIVER=$RECEIVER', 'PORT=$PORT'], mounts: [bindMount('$STATE_DIRECTORY/$NAME', '/var/lib/app')] });
const values = { NAME: 'hello', RECEIVER: 'World', PORT: '8081', STATE_DIRECTORY: '/var/lib' };

describe('config.json', () => {
  it('renders config.json.template with the values, in the service cgroup', async () => {
    const r = await renderConfig({ name: 'hello', image, configTemplate: template, values });
    assert.equal(r.source, 'config.json.template');
    assert.deepEqual(r.spec.process.env, ['RECEIVER=World', 'PORT=8081']);
    assert.equal(r.spec.linux?.cgroupsPath, '/system.slice/hello.service/container');
    assert.deepEqual(bindMountSources(r.spec), ['/var/lib/hello']);
  });

  it('a --set value that closes a JSON string stays inside it', async () => {
    const evil = 'x", "PWNED=1"], "root": {"path": "/", "readonly": false}, "z": ["';
    const r = await renderConfig({ name: 'hello', image, configTemplate: template, values: { ...values, RECEIVER: evil } });
    assert.deepEqual(r.spec.process.env, [`RECEIVER=${evil}`, 'PORT=8081']);
    assert.deepEqual(r.spec.root, { path: 'rootfs', readonly: true });
  });

  it('uses /exports/config.json as is (no substitution), preferring it to the template', async () => {
    const json = JSON.stringify({ process: { args: ['/bin/x', '$NOT_A_VARIABLE'], cwd: '/', user: { uid: 0, gid: 0 } }, root: { path: 'rootfs', readonly: true }, ociVersion: '1.0.2' });
    const r = await renderConfig({ name: 'x', image, configJson: json, configTemplate: template, values: {} });
    assert.equal(r.source, 'config.json');
    assert.deepEqual(r.spec.process.args, ['/bin/x', '$NOT_A_VARIABLE']);
    assert.match(r.warnings[0]!, /both/);
  });

  it('falls back to the default config', async () => {
    const r = await renderConfig({ name: 'x', image, values: {} });
    assert.equal(r.source, 'default');
    assert.deepEqual(r.spec.process.args, ['/bin/true']);
  });

  it('refuses a writable root, another root path and empty args, from the image too', async () => {
    const spec = JSON.parse(template) as RuntimeSpec;
    const variants: [string, (s: RuntimeSpec) => void, RegExp][] = [
      ['readonly false', (s) => (s.root.readonly = false), /root.readonly must be true/],
      ['readonly missing', (s) => delete s.root.readonly, /root.readonly must be true/],
      ['root path', (s) => (s.root.path = '/'), /root.path/],
      ['args', (s) => (s.process.args = []), /process.args/],
    ];
    for (const [what, change, re] of variants) {
      const s = structuredClone(spec);
      change(s);
      await assert.rejects(renderConfig({ name: 'x', image, configTemplate: JSON.stringify(s), values }), { code: 'USAGE', message: re }, what);
      await assert.rejects(renderConfig({ name: 'x', image, configJson: JSON.stringify(s), values }), re, what);
    }
  });

  it('keeps a cgroupsPath the image sets, with a warning', async () => {
    const s = JSON.parse(template) as RuntimeSpec;
    s.linux = { ...s.linux, cgroupsPath: '/mine' };
    const r = await renderConfig({ name: 'hello', image, configTemplate: JSON.stringify(s), values });
    assert.equal(r.spec.linux?.cgroupsPath, '/mine');
    assert.match(r.warnings[0]!, /outside its service's cgroup/);
  });

  it('reports variables inserted as JSON, and a result that is not JSON', async () => {
    const t = template.replace('"mounts": [', '"mounts": [ $EXTRA_MOUNTS');
    const r = await renderConfig({ name: 'hello', image, configTemplate: t, values: { ...values, EXTRA_MOUNTS: '{"destination": "/x", "type": "bind", "source": "/srv/x", "options": ["rbind"]},' } });
    assert.deepEqual(r.rawVariables, ['EXTRA_MOUNTS']);
    assert.ok(bindMountSources(r.spec).includes('/srv/x'));
    await assert.rejects(renderConfig({ name: 'hello', image, configTemplate: t, values: { ...values, EXTRA_MOUNTS: '}' } }), /\(rendered\) is not JSON/);
  });

  it('names the template and the variable that has no value', async () => {
    await assert.rejects(renderConfig({ name: 'hello', image, configTemplate: template, values: { NAME: 'x' } }), {
      message: '/exports/config.json.template: variables $RECEIVER, $PORT, $STATE_DIRECTORY have no value',
    });
  });
});
