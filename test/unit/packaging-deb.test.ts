/**
 * packaging/build-deb.sh builds a .deb that dpkg-deb accepts: control fields
 * and dependencies, maintainer scripts, the conffile, and every file where a
 * Debian system expects it; the packaged CLI runs from the package's own tree.
 * Skipped without dpkg-deb. Builds into a temp dir (about 45 s: tsc, npm ci).
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { hasCommand } from '../harness/util.ts';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const hasDpkgDeb = hasCommand('dpkg-deb');

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { cwd: REPO, env, maxBuffer: 64 * 1024 * 1024, timeout: 300_000 }, (err, stdout, stderr) => (err ? reject(new Error(`${cmd} ${args.join(' ')}: ${err.message}\n${stderr}`)) : resolve(stdout)));
  });
}

describe('packaging/build-deb.sh', { skip: hasDpkgDeb ? false : 'dpkg-deb is not installed', timeout: 300_000 }, () => {
  let out: string;
  let deb: string;
  let info: string;
  let files: string[];

  before(async () => {
    out = await mkdtemp(path.join(tmpdir(), 'berth-deb-'));
    const stdout = await run('sh', ['packaging/build-deb.sh'], { ...process.env, OUT_DIR: out });
    deb = stdout.trim().split('\n').at(-1)!;
    info = await run('dpkg-deb', ['-I', deb]);
    // "-rw-r--r-- root/root 123 2026-01-01 00:00 ./usr/bin/berth" -> mode, owner, path
    files = (await run('dpkg-deb', ['-c', deb])).split('\n').filter(Boolean);
  });

  after(async () => {
    if (out) await rm(out, { recursive: true, force: true });
  });

  const entry = (p: string) => files.find((l) => l.endsWith(` ./${p}`) || l.includes(` ./${p} -> `));

  it('is named after the version and declares what berth needs', async () => {
    const { version } = JSON.parse(await readFile(path.join(REPO, 'package.json'), 'utf8')) as { version: string };
    assert.equal(path.basename(deb), `berth_${version}_all.deb`);
    assert.match(info, /^ Package: berth$/m);
    assert.match(info, new RegExp(`^ Version: ${version.replace(/\./g, '\\.')}$`, 'm'));
    assert.match(info, /^ Architecture: all$/m);
    assert.match(info, /^ Depends: nodejs \(>= 20\.18\), runc \| crun, systemd, dbus, util-linux, attr$/m);
    assert.match(info, /^ Installed-Size: \d+$/m);
    for (const s of ['postinst', 'prerm', 'postrm', 'conffiles', 'md5sums']) assert.match(info, new RegExp(`\\s${s}\\b`), `control member ${s}`);
  });

  it('puts every file where Debian expects it, owned by root', () => {
    for (const p of [
      'usr/bin/berth',
      'usr/lib/berth/bin/berth.js',
      'usr/lib/berth/dist/cli/main.js',
      'usr/lib/berth/dist/ops/bundle.js',
      'usr/lib/berth/package.json',
      'usr/lib/berth/templates/service.template',
      'usr/lib/berth/node_modules/yargs/package.json',
      'lib/systemd/system/berth-agent.service',
      'lib/systemd/system/berth-auto-update.service',
      'lib/systemd/system/berth-auto-update.timer',
      'usr/share/dbus-1/system.d/org.berth.Manager1.conf',
      'etc/berth/berth.conf',
      'usr/share/bash-completion/completions/berth',
      'usr/share/man/man1/berth.1.gz',
      'usr/share/doc/berth/README.md',
      'usr/share/doc/berth/copyright',
    ]) {
      assert.ok(entry(p), `${p} is in the package`);
    }
    assert.match(entry('usr/bin/berth')!, /^-rwxr-xr-x root\/root /);
    assert.ok(files.every((l) => / root\/root /.test(l)), 'every entry is root:root');
    assert.ok(!files.some((l) => / \.\/usr\/lib\/berth\/node_modules\/(typescript|tsx|@types)\//.test(l)), 'no development dependencies');
    assert.ok(!files.some((l) => /\.ts$/.test(l) && !/\.d\.ts$/.test(l) && !/node_modules/.test(l)), 'no TypeScript sources');
  });

  it('has a working CLI, manual, completion and maintainer scripts', async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'berth-deb-x-'));
    try {
      await run('dpkg-deb', ['-x', deb, root]);
      const lib = path.join(root, 'usr/lib/berth');
      const { version } = JSON.parse(await readFile(path.join(lib, 'package.json'), 'utf8')) as { version: string };
      assert.equal((await run(process.execPath, [path.join(lib, 'bin/berth.js'), '--version'], { ...process.env, BERTH_FROM_SOURCE: '' })).trim(), version);
      const wrapper = await readFile(path.join(root, 'usr/bin/berth'), 'utf8');
      assert.match(wrapper, /\/etc\/berth\/berth\.conf/);
      assert.match(wrapper, /exec node --max-semi-space-size=4 \/usr\/lib\/berth\/bin\/berth\.js "\$@"/);
      const man = execFileSync('gzip', ['-dc', path.join(root, 'usr/share/man/man1/berth.1.gz')], { encoding: 'utf8' });
      assert.match(man, /^\.TH BERTH 1 /m);
      assert.match(man, /^\.SS "berth install"$/m);
      assert.match(man, /^\.SS "berth trust set"$/m);
      await run('bash', ['-n', path.join(root, 'usr/share/bash-completion/completions/berth')]);
      const control = path.join(out, 'control');
      await run('dpkg-deb', ['-e', deb, control]);
      assert.match(await readFile(path.join(control, 'postinst'), 'utf8'), /systemctl daemon-reload/);
      assert.equal((await readFile(path.join(control, 'conffiles'), 'utf8')).trim(), '/etc/berth/berth.conf');
      for (const s of ['postinst', 'prerm', 'postrm']) await run('sh', ['-n', path.join(control, s)]);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
