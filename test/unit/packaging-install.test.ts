/**
 * packaging/install.sh into a DESTDIR (no host checks, no systemctl): the
 * layout, units rewritten to /usr/local/bin/berth, a working CLI, a reinstall
 * that keeps the administrator's berth.conf, and an idempotent --uninstall.
 * Also: the provisioning examples are well-formed (shell syntax, Butane YAML).
 * About 45 s (two installs: tsc, npm ci).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { access, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';

const REPO = fileURLToPath(new URL('../../', import.meta.url));

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { cwd: REPO, env, maxBuffer: 16 * 1024 * 1024, timeout: 300_000 }, (err, stdout, stderr) => (err ? reject(new Error(`${cmd} ${args.join(' ')}: ${err.message}\n${stderr}`)) : resolve(stdout)));
  });
}

const exists = (p: string) => access(p).then(() => true, () => false);

describe('packaging/install.sh', { timeout: 300_000 }, () => {
  let dest: string;
  const install = (...args: string[]) => run('sh', ['packaging/install.sh', ...args], { ...process.env, DESTDIR: dest });
  const files = [
    'usr/local/bin/berth',
    'usr/local/lib/berth/bin/berth.js',
    'usr/local/lib/berth/dist/cli/main.js',
    'usr/local/lib/berth/templates/service.template',
    'etc/systemd/system/berth-agent.service',
    'etc/systemd/system/berth-auto-update.service',
    'etc/systemd/system/berth-auto-update.timer',
    'etc/systemd/system/berth-apply.service',
    'etc/dbus-1/system.d/org.berth.Manager1.conf',
    'usr/local/share/man/man8/berth.8',
    'usr/local/share/man/man8/berth-install.8',
    'usr/local/share/bash-completion/completions/berth',
  ];

  before(async () => {
    dest = await mkdtemp(path.join(tmpdir(), 'berth-install-'));
  });

  after(async () => {
    if (dest) await rm(dest, { recursive: true, force: true });
  });

  it('installs under /usr/local and /etc, with units that run /usr/local/bin/berth', async () => {
    await install();
    for (const f of files) assert.ok(await exists(path.join(dest, f)), `${f} installed`);
    for (const u of ['berth-agent.service', 'berth-auto-update.service', 'berth-apply.service']) {
      const unit = await readFile(path.join(dest, 'etc/systemd/system', u), 'utf8');
      assert.match(unit, /\/usr\/local\/bin\/berth /);
      assert.doesNotMatch(unit, /=\/usr\/bin\/berth/);
    }
    assert.match(await readFile(path.join(dest, 'usr/local/bin/berth'), 'utf8'), /exec node --max-semi-space-size=4 \/usr\/local\/lib\/berth\/bin\/berth\.js "\$@"/);
    const { version } = JSON.parse(await readFile(path.join(REPO, 'package.json'), 'utf8')) as { version: string };
    assert.equal((await run(process.execPath, [path.join(dest, 'usr/local/lib/berth/bin/berth.js'), '--version'], { ...process.env, BERTH_FROM_SOURCE: '' })).trim(), version);
  });

  it('installs again over itself, keeping the edited berth.conf', async () => {
    const conf = path.join(dest, 'etc/berth/berth.conf');
    await writeFile(conf, 'root=/srv/berth\n');
    await install();
    assert.equal(await readFile(conf, 'utf8'), 'root=/srv/berth\n');
    assert.ok(!(await exists(path.join(dest, 'usr/local/lib/berth.old'))) && !(await exists(path.join(dest, 'usr/local/lib/berth.new'))));
  });

  it('uninstalls, twice, keeping berth.conf', async () => {
    await install('--uninstall');
    await install('--uninstall');
    for (const f of files) assert.ok(!(await exists(path.join(dest, f))), `${f} removed`);
    assert.ok(await exists(path.join(dest, 'etc/berth/berth.conf')));
  });
});

describe('provisioning examples', () => {
  it('shell scripts parse', async () => {
    for (const f of ['packaging/install.sh', 'packaging/build-deb.sh', 'packaging/wrapper.sh', 'packaging/debian/postinst', 'packaging/debian/prerm', 'packaging/debian/postrm']) await run('sh', ['-n', f]);
  });

  it('the Butane config writes a valid plan and a first-boot unit after network-online.target', async () => {
    const bu = YAML.parse(await readFile(path.join(REPO, 'packaging/ignition/berth.bu'), 'utf8')) as {
      variant: string;
      storage: { files: { path: string; contents: { inline?: string } }[] };
      systemd: { units: { name: string; enabled: boolean; contents: string }[] };
    };
    assert.equal(bu.variant, 'fcos');
    const plan = bu.storage.files.find((f) => f.path === '/etc/berth/plan.yaml')!;
    assert.equal((YAML.parse(plan.contents.inline!) as { version: number }).version, 1);
    JSON.parse(bu.storage.files.find((f) => f.path === '/etc/containers/policy.json')!.contents.inline!);
    const unit = bu.systemd.units.find((u) => u.name === 'berth-apply.service')!;
    assert.equal(unit.enabled, true);
    assert.match(unit.contents, /^Wants=network-online\.target$/m);
    assert.match(unit.contents, /^After=network-online\.target/m);
    assert.match(unit.contents, /^ExecStart=\S+berth apply \/etc\/berth\/plan\.yaml$/m);
  });

  it('the kickstart loads the bundle in %post and enables the first-boot apply', async () => {
    const ks = await readFile(path.join(REPO, 'packaging/kickstart/berth-post.ks'), 'utf8');
    const sections = ks.match(/^%post\b[^\n]*\n[\s\S]*?^%end$/gm) ?? [];
    assert.equal(sections.length, 2);
    assert.match(sections[1]!, /berth load "\$media\/images\.tar"/);
    assert.match(sections[1]!, /systemctl enable berth-apply\.service/);
    // The %post bodies are shell.
    for (const s of sections) {
      const body = s.split('\n').slice(1, -1).join('\n');
      const file = path.join(tmpdir(), `berth-ks-${process.pid}.sh`);
      await writeFile(file, body);
      try {
        await run('sh', ['-n', file]);
      } finally {
        await rm(file, { force: true });
      }
    }
  });
});
