/**
 * What every hostile case checks, in one place: berth (the real CLI, inside
 * a test host) refuses with the documented exit status and a one-line error
 * that names the thing and the fix; nothing was written outside berth's
 * directories (the test host's copy-on-write upper dirs for /etc, /var and
 * /usr/local record every write, the unit directory is the test host's own,
 * nothing in its private /run is newer than the case, and berth's /tmp, a
 * directory of the scene's own, is as it was); and nothing was lost (an image
 * pulled before is still there, `berth verify` passes, an installed container
 * still runs).
 *
 * Every place the check reads is written by the test host or by berth alone,
 * never by other programs on the machine: the machine's own /tmp is not read
 * (berth runs with a private one, see private-tmp.sh), so the check holds on
 * a busy machine.
 */
import assert from 'node:assert/strict';
import { chmod, lstat, mkdir, readdir, readlink, readFile, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { buildImage, type BuiltImage, type FixtureImageSpec } from '../fixtures/oci-image.ts';
import { BERTH, BerthEnv } from '../harness/berth-env.ts';
import type { ExecOptions, ExecResult } from '../harness/test-host.ts';
import { HostileRegistry, type HostileRegistryOptions } from './hostile-registry.ts';

/** Paths of the test host's /run that others write to while a case runs: systemd, the journal, the bus, runtimes. */
const RUN_OTHER_WRITERS = ['/run/systemd', '/run/log', '/run/dbus', '/run/user', '/run/udev', '/run/runc', '/run/crun', '/run/lock', '/run/credentials', '/run/mount'];
/** tsx's compile cache (berth run from source), which berth's /tmp holds like any /tmp: not berth's own write. */
const TMP_OTHER_WRITERS = /^tsx-[^/]*(\/|$)/;
const PRIVATE_TMP = fileURLToPath(new URL('./private-tmp.sh', import.meta.url));

/** Commands that read images and so take --policy. */
const POLICY_COMMANDS = new Set(['install', 'update', 'pull']);
/** The image every case must leave in the store. */
export const GOOD_REPO = 'keep/good';

/**
 * Path -> sha256 (files), -> target (symlinks), "dir" (directories), below
 * `dir`, but for paths `skip` matches; empty when it does not exist.
 */
async function tree(dir: string, skip?: RegExp, out = new Map<string, string>(), prefix = dir): Promise<Map<string, string>> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return out;
  }
  for (const name of names) {
    const p = path.join(dir, name);
    const key = path.relative(prefix, p);
    if (skip?.test(key)) continue;
    const st = await lstat(p);
    if (st.isDirectory()) {
      out.set(key, 'dir');
      await tree(p, skip, out, prefix);
    } else if (st.isSymbolicLink()) out.set(key, `-> ${await readlink(p)}`);
    else if (st.isFile()) out.set(key, createHash('sha256').update(await readFile(p)).digest('hex'));
    else out.set(key, `special ${st.mode.toString(8)}`);
  }
  return out;
}

export class HostileScene {
  readonly env: BerthEnv;
  readonly registry: HostileRegistry;
  /** In the store before any case runs. */
  readonly good: BuiltImage;
  /** The host directory that berth sees as /tmp (see {@link asBerth}). */
  readonly tmp: string;

  private constructor(env: BerthEnv, registry: HostileRegistry, good: BuiltImage) {
    this.env = env;
    this.registry = registry;
    this.good = good;
    this.tmp = privateTmpOf(env);
  }

  /** A test host, a hostile registry serving a good image, and that image pulled. */
  static async start(prefix: string, options: HostileRegistryOptions & { creds?: string } = {}): Promise<HostileScene> {
    const env = await BerthEnv.start(prefix);
    const tmp = privateTmpOf(env);
    await mkdir(tmp);
    await chmod(tmp, 0o1777); // as /tmp is
    // The (empty) mount point that keeps the work dir at its path in berth's /tmp.
    const rel = path.relative('/tmp', env.work);
    if (!rel.startsWith('..')) await mkdir(path.join(tmp, rel), { recursive: true });
    const registry = await HostileRegistry.start(options);
    const good = await buildImage(env.layout, 'good', { layers: [[{ path: 'etc/good', content: 'kept\n' }]] });
    registry.serveLayout(GOOD_REPO, env.layout);
    const scene = new HostileScene(env, registry, good);
    const r = await scene.berth(['pull', '--tls-verify=false', ...(options.creds ? ['--creds', options.creds] : []), `docker://${registry.host}/${GOOD_REPO}:good`]);
    assert.equal(r.code, 0, r.stderr);
    return scene;
  }

  /** berth ARGS… inside the test host, with extra environment (e.g. BERTH_MIN_RATE). */
  berth(args: string[], env: Record<string, string> = {}): Promise<ExecResult> {
    const [command, ...rest] = args;
    const policy = POLICY_COMMANDS.has(command!) ? ['--policy', this.env.policy] : [];
    return this.asBerth(process.execPath, [BERTH, '--root', this.env.root, command!, ...policy, ...rest], { env, timeoutMs: 180_000 });
  }

  /** CMD ARGS… inside the test host as berth runs there: with {@link tmp} as its /tmp. */
  asBerth(cmd: string, args: string[], opts: ExecOptions = {}): Promise<ExecResult> {
    const [unshare, ...rest] = this.privateTmpArgv([cmd, ...args]);
    return this.env.host.exec(unshare!, rest, opts);
  }

  /** `argv` wrapped to run with {@link tmp} as its /tmp, in a mount namespace of its own (e.g. for a unit's ExecStart=). */
  privateTmpArgv(argv: string[]): string[] {
    return ['unshare', '--mount', '--propagation', 'private', '--', 'sh', PRIVATE_TMP, this.tmp, this.env.work, ...argv];
  }

  /** Everything written outside the test: the test host's /etc, /var, /usr/local writes, its unit dir, berth's /tmp and berth's root. */
  async writes(): Promise<{ host: Map<string, string>; tmp: Map<string, string>; root: Map<string, string> }> {
    const host = new Map<string, string>();
    for (const top of ['/etc', '/var', '/usr/local']) {
      const upper = this.env.host.overlayPath(top)!;
      assert.ok((await lstat(upper)).isDirectory(), `the test host records writes to ${top} in ${upper}`);
      for (const [k, v] of await tree(upper)) host.set(path.join(top, k), v);
    }
    for (const [k, v] of await tree(this.env.host.unitDir)) host.set(path.join('/etc/systemd/system', k), v);
    return { host, tmp: await tree(this.tmp, TMP_OTHER_WRITERS), root: await tree(this.env.root) };
  }

  /**
   * Run `act` (a hostile case) and check it changed nothing: the host's
   * files, its /run and berth's /tmp as they were (what other programs on
   * the machine write to the machine's /tmp is no concern of the check),
   * berth's root as it was but for `rootMayChange`
   * (e.g. the store's scratch directory), the good image intact.
   */
  async unchangedBy<T>(act: () => Promise<T>, rootMayChange: RegExp = /^store\/tmp(\/|$)|\.lock$/): Promise<T> {
    const before = await this.writes();
    const marker = await this.mark();
    const result = await act();
    const after = await this.writes();
    assert.deepEqual(diff(before.host, after.host), [], 'nothing written on the host');
    assert.deepEqual(await this.runWritesSince(marker), [], 'nothing written in /run');
    assert.deepEqual(diff(before.tmp, after.tmp), [], 'nothing written in /tmp (berth\'s)');
    assert.deepEqual(diff(before.root, after.root).filter((k) => !rootMayChange.test(k)), [], "berth's root as it was");
    await this.nothingLost();
    return result;
  }

  /** A file whose mtime is the start of a case (a tick later, so that -newer catches writes in the same tick). */
  private async mark(): Promise<string> {
    const marker = path.join(this.env.work, '.case-start');
    await writeFile(marker, '');
    await sleep(20);
    return marker;
  }

  /**
   * What changed in the test host's /run after `marker`, but for the test
   * host's own writers. The test host's /run is its own (a directory in its
   * base, not the machine's /run): nothing else on the machine writes there.
   */
  private async runWritesSince(marker: string): Promise<string[]> {
    const prune = RUN_OTHER_WRITERS.flatMap((p) => ['-o', '-path', p]).slice(1);
    const r = await this.env.host.exec('find', ['/run', '-xdev', '(', ...prune, ')', '-prune', '-o', '-newer', marker, '-print']);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.split('\n').filter((p) => p !== '' && p !== '/run');
  }

  /** The good image is still stored and the store verifies. */
  async nothingLost(): Promise<void> {
    const images = await this.berth(['images', '--json']);
    assert.equal(images.code, 0, images.stderr);
    assert.ok(images.stdout.includes(this.good.manifestDigest), `the good image is still stored:\n${images.stdout}`);
    const v = await this.berth(['verify']);
    assert.equal(v.code, 0, `${v.stdout}\n${v.stderr}`);
  }

  /** Build an image into the scene's OCI layout (for oci: installs). */
  build(tag: string, spec: FixtureImageSpec): Promise<BuiltImage> {
    return buildImage(this.env.layout, tag, spec);
  }

  async stop(): Promise<void> {
    await this.registry?.stop();
    await this.env?.stop();
  }
}

/** The host directory that berth sees as /tmp: in the work dir, so removed with it. */
function privateTmpOf(env: BerthEnv): string {
  return path.join(env.work, 'tmp');
}

/** Keys added, removed or changed between two trees. */
function diff(a: Map<string, string>, b: Map<string, string>): string[] {
  const out: string[] = [];
  for (const [k, v] of a) if (b.get(k) !== v) out.push(`${b.has(k) ? 'changed' : 'removed'} ${k}`);
  for (const k of b.keys()) if (!a.has(k)) out.push(`added ${k}`);
  return out.sort();
}

/**
 * The command failed with `exit` and one error line (no stack trace) that
 * matches `message` and carries a hint in parentheses.
 */
export function assertRefused(r: ExecResult, exit: number, message: RegExp): void {
  assert.equal(r.code, exit, `exit ${r.code}, expected ${exit}:\n${r.stderr}`);
  const errors = r.stderr.split('\n').filter((l) => l.startsWith('berth: error: '));
  assert.equal(errors.length, 1, r.stderr);
  const line = errors[0]!;
  assert.match(line, message);
  assert.match(line, /\(.+\)$/, `a hint names the fix: ${line}`);
  assert.doesNotMatch(r.stderr, /^\s+at .+:\d+:\d+\)?$/m, 'no stack trace');
}
