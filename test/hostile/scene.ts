/**
 * What every hostile case checks, in one place: berth (the real CLI, inside
 * a test host) refuses with the documented exit status and a one-line error
 * that names the thing and the fix; nothing was written outside berth's
 * directories (the test host's copy-on-write upper dirs for /etc, /var and
 * /usr/local record every write, the unit directory is the test host's own,
 * and nothing in its /run or in /tmp is newer than the case); and nothing was lost (an image pulled before is still there,
 * `berth verify` passes, an installed container still runs).
 */
import assert from 'node:assert/strict';
import { readdir, readlink, readFile, lstat, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { buildImage, type BuiltImage, type FixtureImageSpec } from '../fixtures/oci-image.ts';
import { BERTH, BerthEnv } from '../harness/berth-env.ts';
import type { ExecResult } from '../harness/test-host.ts';
import { HostileRegistry, type HostileRegistryOptions } from './hostile-registry.ts';

/** Paths that others write to while a case runs: systemd, the journal, the bus, runtimes (test host), tsx's cache (the test). */
const OTHER_WRITERS = ['/run/systemd', '/run/log', '/run/dbus', '/run/user', '/run/udev', '/run/runc', '/run/crun', '/run/lock', '/run/credentials', '/run/mount', '/tmp/tsx-*'];

/** Commands that read images and so take --policy. */
const POLICY_COMMANDS = new Set(['install', 'update', 'pull']);
/** The image every case must leave in the store. */
export const GOOD_REPO = 'keep/good';

/** Path -> sha256 (files), -> target (symlinks), "dir" (directories), below `dir`; empty when it does not exist. */
async function tree(dir: string, out = new Map<string, string>(), prefix = dir): Promise<Map<string, string>> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return out;
  }
  for (const name of names) {
    const p = path.join(dir, name);
    const st = await lstat(p);
    const key = path.relative(prefix, p);
    if (st.isDirectory()) {
      out.set(key, 'dir');
      await tree(p, out, prefix);
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

  private constructor(env: BerthEnv, registry: HostileRegistry, good: BuiltImage) {
    this.env = env;
    this.registry = registry;
    this.good = good;
  }

  /** A test host, a hostile registry serving a good image, and that image pulled. */
  static async start(prefix: string, options: HostileRegistryOptions & { creds?: string } = {}): Promise<HostileScene> {
    const env = await BerthEnv.start(prefix);
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
    return this.env.host.exec(process.execPath, [BERTH, '--root', this.env.root, command!, ...policy, ...rest], { env, timeoutMs: 180_000 });
  }

  /** Everything written outside the test: the test host's /etc, /var, /usr/local writes, its unit dir, and berth's root. */
  async writes(): Promise<{ host: Map<string, string>; root: Map<string, string> }> {
    const host = new Map<string, string>();
    for (const top of ['/etc', '/var', '/usr/local']) {
      const upper = this.env.host.overlayPath(top)!;
      assert.ok((await lstat(upper)).isDirectory(), `the test host records writes to ${top} in ${upper}`);
      for (const [k, v] of await tree(upper)) host.set(path.join(top, k), v);
    }
    for (const [k, v] of await tree(this.env.host.unitDir)) host.set(path.join('/etc/systemd/system', k), v);
    return { host, root: await tree(this.env.root) };
  }

  /**
   * Run `act` (a hostile case) and check it changed nothing: the host's
   * files as they were, berth's root as it was but for `rootMayChange`
   * (e.g. the store's scratch directory), the good image intact.
   */
  async unchangedBy<T>(act: () => Promise<T>, rootMayChange: RegExp = /^store\/tmp(\/|$)|\.lock$/): Promise<T> {
    const before = await this.writes();
    const marker = await this.mark();
    const result = await act();
    const after = await this.writes();
    assert.deepEqual(diff(before.host, after.host), [], 'nothing written on the host');
    assert.deepEqual(await this.runTmpWritesSince(marker), [], 'nothing written in /run or /tmp');
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
   * What changed in the test host's /run and in /tmp after `marker`, but for
   * other writers and the test's own directories (the test host's base holds
   * the overlays checked above and the backing of its /run, walked as /run).
   */
  private async runTmpWritesSince(marker: string): Promise<string[]> {
    const prune = [...OTHER_WRITERS, this.env.work, this.env.host.base].flatMap((p) => ['-o', '-path', p]).slice(1);
    const r = await this.env.host.exec('find', ['/run', '/tmp', '-xdev', '(', ...prune, ')', '-prune', '-o', '-newer', marker, '-print']);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.split('\n').filter((p) => p !== '' && p !== '/run' && p !== '/tmp');
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
