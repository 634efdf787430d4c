/**
 * Hostile values and image files against `berth install`: a --set value that
 * tries to close a JSON string in config.json (inert), values inserted as
 * JSON that leave a string open or repeat a member (refused), unit lines
 * smuggled through renameFiles or a value, and hostfs paths with "..",
 * into systemd's directories or through a symlinked parent (refused before
 * anything is written). A container installed before keeps running.
 */
import assert from 'node:assert/strict';
import { access, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FixtureFile, FixtureImageSpec } from '../fixtures/oci-image.ts';
import { atomicServiceTemplate, configTemplate, helloWorldImage } from '../fixtures/system-images.ts';
import { unusedPort } from '../harness/registry.ts';
import { assertRefused, HostileScene } from './scene.ts';

const ARGS = ['/bin/sh', '-c', "trap 'exit 0' TERM; sleep 3600 & wait"];
const PATH_ENV = 'PATH=/usr/sbin:/usr/bin:/sbin:/bin';

/** A system image whose exports are `files` (plus a plain config.json.template and service.template unless given). */
function systemImage(files: Record<string, string>, extra: FixtureFile[] = []): FixtureImageSpec {
  const exportsFiles: Record<string, string> = {
    'config.json.template': configTemplate({ args: ARGS, env: [PATH_ENV] }),
    'service.template': atomicServiceTemplate({ description: 'hostile template case' }),
    ...files,
  };
  return { layers: [[...Object.entries(exportsFiles).map(([p, content]) => ({ path: `exports/${p}`, content })), ...extra]], config: { Cmd: ARGS, Env: [PATH_ENV] } };
}

const manifestJson = (m: Record<string, unknown>) => JSON.stringify({ version: '1.0', ...m });

describe('hostile templates and host files', () => {
  let scene: HostileScene;
  let layout: string;

  before(async () => {
    scene = await HostileScene.start('berth-hostile-templates');
    layout = scene.env.layout;
    await scene.build('hello', helloWorldImage());
    // $EXTRA_ENV stands outside a string: a hook that receives JSON (as atomic's $ADDTL_MOUNTS does).
    const rawHook = configTemplate({ args: ARGS, env: [PATH_ENV, '@RAW@'] }).replace('"@RAW@"', '$EXTRA_ENV');
    await scene.build('rawhook', systemImage({ 'config.json.template': rawHook, 'manifest.json': manifestJson({ defaultValues: { EXTRA_ENV: '"A=1"' } }) }));
    const hostConf = [{ path: 'exports/hostfs/etc/renamer.conf', content: 'renamed\n' }];
    await scene.build('renamer', systemImage({ 'manifest.json': manifestJson({ defaultValues: { CONF_NAME: 'renamer.conf' }, renameFiles: { '/etc/renamer.conf': '/etc/$CONF_NAME' } }) }, hostConf));
    await scene.build('renamer-unit', systemImage({ 'manifest.json': manifestJson({ renameFiles: { '/etc/renamer.conf': '/etc/systemd/system/evil.service' } }) }, hostConf));
    await scene.build('renamer-newline', systemImage({ 'manifest.json': manifestJson({ renameFiles: { '/etc/renamer.conf': '/etc/x.conf\n[Service]\nExecStartPre=/bin/touch /etc/pwned' } }) }, hostConf));
    await scene.build('greeting', systemImage({
      'service.template': atomicServiceTemplate({ description: 'greets', service: ['Environment=GREETING=$GREETING'] }),
      'manifest.json': manifestJson({ defaultValues: { GREETING: 'hi' } }),
    }));
    await scene.build('through-link', systemImage({}, [{ path: 'exports/hostfs/etc/berth-hostile-link/evil.conf', content: 'through a link\n' }]));
    // Pulled now, so that a refused install is seen to leave berth's root exactly as it was.
    for (const tag of ['rawhook', 'renamer', 'renamer-unit', 'renamer-newline', 'greeting', 'through-link']) {
      const p = await scene.berth(['pull', `oci:${layout}:${tag}`]);
      assert.equal(p.code, 0, p.stderr);
    }

    const port = await unusedPort();
    const r = await scene.berth(['install', '--name', 'keeper', '--set', `PORT=${port}`, `oci:${layout}:hello`]);
    assert.equal(r.code, 0, r.stderr);
  });

  after(async () => {
    if (scene) await scene.berth(['uninstall', '--all']);
    await scene?.stop();
  });

  /** Install, expecting a refusal that changed nothing; the keeper still runs. */
  const refusedInstall = async (tag: string, exit: number, message: RegExp, ...set: string[]) => {
    const r = await scene.unchangedBy(() => scene.berth(['install', '--name', tag, ...set.flatMap((s) => ['--set', s]), `oci:${layout}:${tag}`]));
    assertRefused(r, exit, message);
    assert.equal(await scene.env.host.unitProperty('keeper.service', 'ActiveState'), 'active', 'the installed container still runs');
    assert.equal(await scene.env.host.unitProperty(`${tag}.service`, 'LoadState'), 'not-found');
  };

  it('the write check itself sees a write to /etc, /run or /tmp (a check of the check)', async () => {
    // Written as berth would write them: by a process run like berth, so /tmp is berth's /tmp.
    const probes: [string, RegExp][] = [
      ['/etc/berth-probe', /nothing written on the host/],
      ['/run/berth-probe', /nothing written in \/run/],
      [`/tmp/berth-probe-${process.pid}`, /nothing written in \/tmp/],
      [`/tmp/berth-probe-${process.pid}-dir/`, /nothing written in \/tmp/],
    ];
    for (const [file, message] of probes) {
      const write = file.endsWith('/') ? ['mkdir', [file]] as const : ['touch', [file]] as const;
      await assert.rejects(scene.unchangedBy(() => scene.asBerth(write[0], [...write[1]])), message, file);
      if (file.startsWith('/tmp/')) {
        // Berth's /tmp is not the machine's: the probe landed in the scene's directory, nowhere else.
        await access(path.join(scene.tmp, path.relative('/tmp', file)));
        await assert.rejects(access(file), { code: 'ENOENT' }, file);
      }
      const rm = await scene.asBerth('rm', ['-rf', file]);
      assert.equal(rm.code, 0, rm.stderr);
    }
  });

  it('the write check ignores what others write to the machine\'s /tmp and /run meanwhile', async () => {
    const tmpFile = path.join('/tmp', `berth-other-${process.pid}`);
    const runFile = path.join('/run', `berth-other-${process.pid}`);
    try {
      await scene.unchangedBy(async () => {
        await writeFile(tmpFile, 'another program\n');
        await writeFile(runFile, 'another program\n');
        // and a process inside the test host that is not berth, writing to the machine's /tmp
        const r = await scene.env.host.exec('touch', [`${tmpFile}-inside`]);
        assert.equal(r.code, 0, r.stderr);
      });
    } finally {
      await Promise.all([tmpFile, runFile, `${tmpFile}-inside`].map((f) => rm(f, { force: true })));
    }
  });

  it('keeps a --set value that closes a JSON string inert: config.json holds it literally, no key is injected', async () => {
    const evil = 'x", "evil": "y';
    const r = await scene.berth(['install', '--name', 'quoted', '--set', `RECEIVER=${evil}`, '--set', `PORT=${await unusedPort()}`, `oci:${layout}:hello`]);
    assert.equal(r.code, 0, r.stderr);
    const config = JSON.parse(await readFile(path.join(scene.env.root, 'containers', 'quoted.0', 'config.json'), 'utf8')) as { process: { env: string[] } } & Record<string, unknown>;
    assert.ok(config.process.env.includes(`RECEIVER=${evil}`), config.process.env.join('\n'));
    assert.equal(config['evil'], undefined);
    assert.equal(Object.hasOwn(config.process, 'evil'), false);
    assert.equal((await scene.berth(['uninstall', 'quoted'])).code, 0);
  });

  it('refuses a value inserted as JSON that leaves a string open', async () => {
    await refusedInstall('rawhook', 2, /the value of \$EXTRA_ENV is inserted as JSON and leaves a string open/, 'EXTRA_ENV="B=2", "C');
  });

  it('refuses a value inserted as JSON that repeats a member of config.json', async () => {
    // Closes the env list, sets "cwd" (which the template sets again after it) and reopens a list for the rest.
    await refusedInstall('rawhook', 2, /config\.json\.template \(rendered\) is not JSON: duplicate member "cwd"/, 'EXTRA_ENV="B=2"], "cwd": "/tmp", "x": ["y"');
  });

  it('refuses unit lines smuggled through a --set value that renameFiles uses', async () => {
    await refusedInstall('renamer', 2, /--set: value of CONF_NAME contains a newline or NUL/, 'CONF_NAME=x.conf\n[Service]\nExecStartPre=/bin/touch /etc/pwned');
  });

  it('refuses unit lines smuggled through renameFiles itself', async () => {
    await refusedInstall('renamer-newline', 5, /renameFiles\["\/etc\/renamer\.conf"\]: .* contains a (newline or NUL|control character)/);
  });

  it('refuses a renameFiles target in systemd\'s directories', async () => {
    await refusedInstall('renamer-unit', 5, /\/etc\/systemd\/system\/evil\.service is below \/etc\/systemd/);
  });

  it('refuses a value ending in a backslash that would join the next unit line', async () => {
    await refusedInstall('greeting', 2, /the value of \$GREETING ends with a backslash at the end of a line/, 'GREETING=hi\\');
  });

  it('refuses a hostfs path with ".." made by a value', async () => {
    await refusedInstall('renamer', 5, /renameFiles\["\/etc\/renamer\.conf"\]: "\/etc\/\.\.\/usr\/local\/bin\/evil" contains "\.\."/, 'CONF_NAME=../usr/local/bin/evil');
  });

  it('refuses to write a host file through a symlinked parent on the host', async () => {
    const ln = await scene.env.host.exec('ln', ['-s', '/usr/local/lib', '/etc/berth-hostile-link']);
    assert.equal(ln.code, 0, ln.stderr);
    await refusedInstall('through-link', 5, /berth-hostile-link.*symlink/);
    assert.equal((await scene.env.host.exec('test', ['-e', '/usr/local/lib/evil.conf'])).code, 1, 'nothing written through the link');
  });
});
