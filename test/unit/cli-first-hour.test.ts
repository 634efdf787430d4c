/**
 * Issue 16 part A, "a sysadmin's first hour": berth run as a subprocess
 * against a temporary --root, the way a newcomer types it. Each case names
 * the command, the one line it must print (berth: error: WHAT (HINT)) and
 * its exit status, or what it must not leave behind. No systemd needed.
 */
import assert from 'node:assert/strict';
import { spawn, type SpawnOptions } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as openpgp from 'openpgp';
import { buildImage, type BuiltImage } from '../fixtures/oci-image.ts';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const BERTH = path.join(REPO, 'bin/berth.js');
const NOBODY = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'];

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function exec(argv: string[], options: { env?: Record<string, string | undefined>; cwd?: string; asNobody?: boolean } = {}): Promise<Run> {
  const env: Record<string, string | undefined> = { ...process.env, NO_COLOR: '1', BERTH_DEBUG: undefined, BERTH_ROOT: undefined, ...options.env };
  for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k];
  const [cmd, ...args] = options.asNobody ? [...NOBODY, process.execPath, BERTH, ...argv] : [process.execPath, BERTH, ...argv];
  return new Promise((resolve, reject) => {
    const spawnOptions: SpawnOptions = { stdio: ['ignore', 'pipe', 'pipe'], env: env as NodeJS.ProcessEnv, cwd: options.cwd ?? REPO, timeout: 60_000, killSignal: 'SIGKILL' };
    const child = spawn(cmd!, args, spawnOptions);
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** The run printed exactly `line` on stderr (and nothing else, so no stack trace) and exited with `code`. */
function failsWith(r: Run, code: number, line: string | RegExp): void {
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(r.code, code, `exit status; stderr:\n${r.stderr}`);
  if (typeof line === 'string') assert.deepEqual(lines, [line]);
  else {
    assert.equal(lines.length, 1, `one line:\n${r.stderr}`);
    assert.match(lines[0]!, line);
  }
  assert.doesNotMatch(r.stderr, /^\s+at /m, 'no stack trace');
}

const exists = (p: string) => fs.lstat(p).then(() => true, () => false);

describe('a sysadmin\'s first hour (issue 16 part A)', () => {
  let work: string;
  let root: string;
  let policy: string;
  let image: BuiltImage;
  let ref: string;
  const berth = (...argv: string[]) => exec(['--root', root, ...argv]);

  before(async () => {
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'berth-first-hour-'));
    root = path.join(work, 'root');
    policy = path.join(work, 'policy.json');
    await fs.writeFile(policy, JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }));
    image = await buildImage(path.join(work, 'layout'), 'web', { busybox: false, layers: [[{ path: 'www/index.html', content: 'first hour\n' }]], config: { Cmd: ['/bin/sh'] } });
    ref = `oci:${path.join(work, 'layout')}:web`;
    // 1. pull -q prints only the digest.
    const pulled = await berth('pull', '-q', '--policy', policy, ref);
    assert.equal(pulled.code, 0, pulled.stderr);
    assert.equal(pulled.stdout, `${image.manifestDigest}\n`);
    assert.equal(pulled.stderr, '', 'no progress with -q');
  });
  after(() => fs.rm(work, { recursive: true, force: true }));

  it('1: trust set --type signedBy --pubkeys KEY.gpg SCOPE (the help\'s own example) takes the scope', async () => {
    const k = await openpgp.generateKey({ type: 'ecc', curve: 'ed25519Legacy', userIDs: [{ name: 'ops', email: 'ops@example.com' }], format: 'object' });
    const key = path.join(work, 'KEY.gpg');
    await fs.writeFile(key, k.publicKey.armor());
    const file = path.join(work, 'trust-policy.json');
    const r = await berth('trust', 'set', '--policy', file, '--registries.d', path.join(work, 'registries.d'), '--type', 'signedBy', '--pubkeys', key, 'registry.example.com/infra');
    assert.equal(r.code, 0, r.stderr);
    const written = JSON.parse(await fs.readFile(file, 'utf8')) as { transports: { docker: Record<string, unknown> } };
    assert.ok(written.transports.docker['registry.example.com/infra'], JSON.stringify(written));
  });

  it('2: no stack trace for a user\'s mistake; BERTH_DEBUG=1 shows one', async () => {
    const [uninstall, update, save, debug] = await Promise.all([
      berth('uninstall'),
      berth('update'),
      berth('save', '-o', '/nonexistent-dir/x.tar', '--policy', policy, 'docker://registry.example.com/etcd:3.4'),
      exec(['--root', root, 'uninstall'], { env: { BERTH_DEBUG: '1' } }),
    ]);
    failsWith(uninstall, 2, 'berth: error: name one container, or give --all (see berth --help)');
    failsWith(update, 2, 'berth: error: name one container, or give --all (see berth --help)');
    failsWith(save, 2, 'berth: error: --output /nonexistent-dir/x.tar: no directory /nonexistent-dir (create it first, or write the bundle elsewhere)');
    assert.equal(debug.code, 2);
    assert.match(debug.stderr, /^\s+at /m, 'BERTH_DEBUG=1: the stack');
  });

  it('3: as non-root, state changes fail up front with exit 9, read-only commands say why they cannot', async () => {
    const nobody = (...argv: string[]) => exec(['--root', root, ...argv], { asNobody: true });
    const [images, verify, dryRun, trustDefault, rmi, lockTimeout] = await Promise.all([
      nobody('images'),
      nobody('verify'),
      nobody('install', '--dry-run', '--policy', policy, ref),
      exec(['trust', 'default', 'reject'], { asNobody: true }),
      nobody('rmi', 'web'),
      berth('images', '--lock-timeout', 'abc'),
    ]);
    failsWith(images, 9, `berth: error: berth images: ${root} is readable by root only (run: sudo berth images ...)`);
    failsWith(verify, 9, `berth: error: berth verify: ${root} is readable by root only (run: sudo berth verify ...)`);
    failsWith(dryRun, 9, 'berth: error: berth install must run as root (run: sudo berth install ...)');
    failsWith(trustDefault, 9, 'berth: error: berth trust default must run as root (run: sudo berth trust default ...)');
    failsWith(rmi, 9, 'berth: error: berth rmi must run as root (run: sudo berth rmi ...)');
    failsWith(lockTimeout, 2, 'berth: error: --lock-timeout: expected a number of seconds (see berth --help)');
  });

  it('4: images and list take podman\'s -q, --format, --noheading, --no-trunc, --filter', async () => {
    const hex = image.manifestDigest.slice(7);
    const [q, tpl, table, noTrunc, json, refFilter, dangling, badField, badFilter, list] = await Promise.all([
      berth('images', '-q'),
      berth('images', '--format', '{{.Repository}}:{{.Tag}}'),
      berth('images', '--format', 'table {{.ID}}\\t{{.Tag}}'),
      berth('images', '--no-trunc', '--noheading'),
      berth('images', '--format', 'json'),
      berth('images', '--filter', 'reference=*layout*', '-q'),
      berth('images', '--filter', 'dangling=true', '-q'),
      berth('images', '--format', '{{.Repo}}'),
      berth('images', '--filter', 'refrence=web'),
      berth('list', '-q'),
    ]);
    assert.equal(q.stdout, `${hex.slice(0, 12)}\n`);
    assert.equal(tpl.stdout, `${ref}\n`);
    assert.match(table.stdout, new RegExp(`^ID\\s+TAG\\n${hex.slice(0, 12)}\\s+web\\n$`));
    assert.match(noTrunc.stdout, new RegExp(`^${ref.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s+${image.manifestDigest}\\s`));
    assert.equal((JSON.parse(json.stdout) as { digest: string }[])[0]!.digest, image.manifestDigest);
    assert.equal(refFilter.stdout, `${hex.slice(0, 12)}\n`);
    assert.equal(dangling.stdout, '');
    failsWith(badField, 2, /^berth: error: --format: no field \.Repo \(fields: ID, Digest, Repository, Tag, /);
    failsWith(badFilter, 2, 'berth: error: --filter refrence=web: unknown filter refrence (did you mean reference? filters: reference, dangling, id, used)');
    assert.equal(list.code, 0, list.stderr);
    assert.equal(list.stdout, '');
  });

  it('4: inspect takes a short image ID and shows the image\'s own Created, the pull time as Pulled', async () => {
    const r = await berth('inspect', image.manifestDigest.slice(7, 14));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Created: {4}2000-01-01T00:00:00(\.000)?Z$/m, 'the fixture config\'s created');
    assert.match(r.stdout, /^Pulled: {5}\d{4}-\d\d-\d\dT/m);
    const missing = await berth('inspect', 'fffffff');
    failsWith(missing, 3, 'berth: error: image fffffff is not in the store (berth images lists the stored images; berth pull fetches one)');
  });

  it('4: rmi, mount, umount and logs take --json', async () => {
    for (const command of ['rmi', 'mount', 'umount', 'logs']) {
      const r = await berth(command, '--help');
      assert.match(r.stdout, /^\s+--json\s/m, `${command} --help lists --json`);
    }
  });

  it('5: apply names a plan\'s problems by key path, each on its line, with did-you-mean', async () => {
    const plan = path.join(work, 'plan.yaml');
    await fs.writeFile(plan, `version: 1\ncontainers:\n  etcd:\n    image: ${ref}\n    imge: x\n`);
    const r = await exec(['--root', root, 'apply', '--dry-run', '--policy', policy, 'plan.yaml'], { cwd: work });
    failsWith(r, 2, 'berth: error: plan.yaml: containers.etcd.imge: unknown key (did you mean image?)');
  });

  it('6: verify --repair names a dropped image by its references', async () => {
    const scratch = path.join(work, 'repair-root');
    await fs.cp(root, scratch, { recursive: true });
    const objects = path.join(scratch, 'store', 'objects');
    const fan = (await fs.readdir(objects))[0]!;
    const object = path.join(objects, fan, (await fs.readdir(path.join(objects, fan)))[0]!);
    await fs.chmod(object, 0o644);
    await fs.writeFile(object, 'tampered\n');
    const r = await exec(['--root', scratch, 'verify', '--repair']);
    assert.match(r.stdout, new RegExp(`^problem: image ${image.manifestDigest} \\(${ref.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\) needs 1 missing or damaged layer`, 'm'), r.stdout + r.stderr);
  });

  it('6: an empty BERTH_ROOT is unset (not the current directory); --root "" is refused', async () => {
    // The current directory holds a store with an image: berth must not read it as its root.
    const r = await exec(['images', '-q'], { cwd: root, env: { BERTH_ROOT: '' } });
    assert.doesNotMatch(r.stdout, new RegExp(image.manifestDigest.slice(7, 19)));
    failsWith(await exec(['--root', '', 'images']), 2, 'berth: error: --root: empty path (give a directory, or leave --root out for $BERTH_ROOT or /var/lib/berth)');
  });

  it('6: read-only commands do not create the store', async () => {
    const none = path.join(work, 'never-created');
    const runs = await Promise.all([['images'], ['list'], ['inspect', 'web'], ['verify']].map((argv) => exec(['--root', none, ...argv])));
    assert.deepEqual(runs.map((r) => r.code), [0, 0, 3, 0], runs.map((r) => r.stderr).join(''));
    assert.equal(await exists(none), false, `${none} was created`);
  });

  it('6: an interrupted save leaves no OUT.tmp-PID (src/interrupt.ts)', async () => {
    const tmp = path.join(work, 'bundle.tar.tmp-x');
    const script = `import fs from 'node:fs'; import { removeOnInterrupt } from ${JSON.stringify(path.join(REPO, 'src/interrupt.ts'))};
fs.writeFileSync(${JSON.stringify(tmp)}, 'half'); removeOnInterrupt(${JSON.stringify(tmp)}); console.log('ready'); setInterval(() => {}, 1000);`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: REPO, stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    assert.equal(await exists(tmp), true);
    const ended = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_c, s) => resolve(s)));
    child.kill('SIGINT');
    assert.equal(await ended, 'SIGINT', 'dies of the signal, as before');
    assert.equal(await exists(tmp), false, 'the temporary file is gone');
  });

  it('7: unknown options and commands are named, with did-you-mean', async () => {
    const [option, near, command, unknown] = await Promise.all([berth('install', '--frob', ref), berth('install', '--dry-runn', ref), berth('instal', ref), berth('frobnicate')]);
    failsWith(option, 2, 'berth: error: unknown option --frob (see berth --help)');
    failsWith(near, 2, 'berth: error: unknown option --dry-runn (did you mean --dry-run?)');
    failsWith(command, 2, 'berth: error: unknown command instal (did you mean install?)');
    failsWith(unknown, 2, 'berth: error: unknown command frobnicate (berth --help lists them)');
  });

  it('7: --after etdc with etcd installed is refused; logs of an unknown name exits 3; update --all says when nothing is installed', async () => {
    const fake = path.join(work, 'fake-root');
    await fs.mkdir(path.join(fake, 'containers', 'etcd.0'), { recursive: true });
    await fs.symlink('etcd.0', path.join(fake, 'containers', 'etcd'));
    const [after, logs, updateAll, noPull] = await Promise.all([
      exec(['--root', fake, 'install', '--dry-run', '--after', 'etdc', '--policy', policy, ref]),
      berth('logs', 'nosuch'),
      berth('update', '--all'),
      berth('update', '--no-pull', 'nosuch'),
    ]);
    failsWith(after, 2, 'berth: error: --after etdc: no berth container or unit etdc.service (did you mean etcd? Or write etdc.service for a unit not installed yet)');
    failsWith(logs, 3, 'berth: error: container nosuch is not installed (berth list shows what is installed)');
    assert.equal(updateAll.code, 0, updateAll.stderr);
    assert.equal(updateAll.stdout, 'nothing to update: no container is installed\n');
    // --no-pull is yargs' negation of --pull (it once failed as "Unknown argument: pull")
    failsWith(noPull, 3, 'berth: error: container nosuch is not installed (berth list shows what is installed; berth install adds it)');
  });

  it('7: shell completion offers values and container names, and no space after a directory', async () => {
    const gen = spawn(process.execPath, [path.join(REPO, 'packaging/gen-completion.mjs'), BERTH], { stdio: ['ignore', 'pipe', 'inherit'] });
    let script = '';
    gen.stdout.setEncoding('utf8').on('data', (d: string) => (script += d));
    await new Promise((resolve) => gen.once('close', resolve));
    const file = path.join(work, 'berth.bash');
    await fs.writeFile(file, script);
    const croot = path.join(work, 'completion-root');
    await fs.mkdir(path.join(croot, 'containers', 'etcd.0'), { recursive: true });
    await fs.symlink('etcd.0', path.join(croot, 'containers', 'etcd'));
    const complete = async (...words: string[]) => {
      const sh = `source ${file}; COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _berth; printf '%s\\n' "\${COMPREPLY[@]}"`;
      const r = await new Promise<string>((resolve) => {
        const b = spawn('bash', ['-c', sh], { stdio: ['ignore', 'pipe', 'ignore'] });
        let out = '';
        b.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
        b.once('close', () => resolve(out));
      });
      return r.split('\n').filter(Boolean);
    };
    assert.deepEqual(await complete('berth', 'install', '--pull', ''), ['always', 'missing', 'never']);
    assert.deepEqual(await complete('berth', 'trust', 'default', ''), ['accept', 'reject']);
    assert.deepEqual(await complete('berth', '--root', croot, 'logs', ''), ['etcd']);
    assert.deepEqual(await complete('berth', '--root', croot, 'install', '--after', 'e'), ['etcd']);
    assert.deepEqual(await complete('berth', 'install', '--set', ''), [], 'KEY=VALUE: no file names');
    assert.match(script, /compopt -o filenames 2>\/dev\/null\n {2}COMPREPLY=\(\$\(compgen -W "\$words" -- "\$cur"\) \$\(compgen -f -- "\$cur"\)\)/, 'file names complete as file names: a directory gets a slash, not a space');
  });
});

describe('short image IDs', () => {
  it('an ambiguous prefix is a conflict (exit 6) naming the candidates', async () => {
    const { lookup } = await import('../../src/ops/images.ts');
    const img = (hex: string, references: string[]) => ({ manifestDigest: `sha256:${hex}`, references });
    const a = img(`abc1${'0'.repeat(60)}`, ['docker://r.example/a:1']);
    const b = img(`abc2${'0'.repeat(60)}`, []);
    const store = { listImages: async () => [a, b], resolveReference: async () => undefined, getImage: async () => undefined };
    await assert.rejects(lookup(store as never, 'abc'), (e: { code?: string; exitCode?: number; message?: string }) => {
      assert.equal(e.code, 'AMBIGUOUS');
      assert.equal(e.exitCode, 6);
      assert.equal(e.message, 'image ID abc matches 2 images: abc100000000 (docker://r.example/a:1); abc200000000');
      return true;
    });
    assert.equal((await lookup(store as never, 'abc1')).stored, a);
    assert.equal((await lookup(store as never, 'abc1')).byDigest, true);
  });
});
