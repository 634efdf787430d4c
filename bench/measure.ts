/**
 * Timing helpers for bench/run.ts: commands run under GNU time (wall
 * seconds, peak RSS, user and system CPU, children included), the page cache
 * dropped before "cold" runs when the kernel lets us, medians.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Sample {
  wall: number;
  /** Peak resident set size, KiB (the largest process of the command). */
  rssKb: number;
  user: number;
  sys: number;
  /** The command's stdout, when RunOptions.stdout asked for it. */
  stdout?: string;
}

export interface RunOptions {
  /** Keep the command's stdout (Sample.stdout). */
  stdout?: boolean;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Drop the page cache (after a sync) before the run. */
  cold?: boolean;
  /** Where the command runs: spawned here by default; e.g. inside a test host (bench/install.ts). */
  runner?: Runner;
}

/** Runs argv to completion: its exit code, its stdout and (the start of) its stderr. */
export type Runner = (argv: string[], options: RunOptions) => Promise<{ code: number; stdout: string; stderr: string }>;

let dropAllowed: boolean | undefined;

/** `sync; echo 3 > /proc/sys/vm/drop_caches`; false (and never tried again) when not permitted. */
export function dropCaches(): boolean {
  spawnSync('sync');
  if (dropAllowed === false) return false;
  try {
    writeFileSync('/proc/sys/vm/drop_caches', '3\n');
    dropAllowed = true;
  } catch {
    dropAllowed = false;
  }
  return dropAllowed;
}

export function cachesDroppable(): boolean {
  return dropAllowed ?? dropCaches();
}

/** The default Runner: a child process of this one. */
const spawnHere: Runner = (argv, options) => {
  const child = spawn(argv[0]!, argv.slice(1), {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: ['ignore', options.stdout ? 'pipe' : 'ignore', 'pipe'],
  });
  let stdout = '';
  child.stdout?.on('data', (c: Buffer) => {
    stdout += c.toString();
  });
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => {
    if (stderr.length < 8192) stderr += c.toString();
  });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
};

/** Run `cmd args` under /usr/bin/time; rejects with its stderr when it fails. `tmp` must be visible to the runner. */
export async function timed(tmp: string, cmd: string, args: readonly string[], options: RunOptions = {}): Promise<Sample> {
  if (options.cold) dropCaches();
  const out = join(tmp, `time.${process.pid}.${Math.random().toString(36).slice(2)}`);
  const { code, stdout, stderr } = await (options.runner ?? spawnHere)(['/usr/bin/time', '-f', '%e %M %U %S', '-o', out, '--', cmd, ...args], options);
  let text = '';
  try {
    text = readFileSync(out, 'utf8');
  } finally {
    rmSync(out, { force: true });
  }
  if (code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${code}):\n${stderr.trim()}\n${text.trim()}`);
  const last = text.trim().split('\n').pop()!.split(' ').map(Number);
  const [wall, rssKb, user, sys] = last as [number, number, number, number];
  return options.stdout ? { wall, rssKb, user, sys, stdout } : { wall, rssKb, user, sys };
}

/** A command's stdout (trimmed); throws on failure. */
export function output(cmd: string, args: readonly string[], env?: NodeJS.ProcessEnv): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: env ?? process.env, maxBuffer: 64 * 1024 * 1024 });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr.trim()}`);
  return r.stdout.trim();
}

/** Like output(), but undefined when the command is missing or fails. */
export function tryOutput(cmd: string, args: readonly string[]): string | undefined {
  try {
    return output(cmd, args);
  } catch {
    return undefined;
  }
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Sum of samples run one after the other (wall and CPU add up; RSS is the larger). */
export function sum(...xs: Sample[]): Sample {
  return xs.reduce((a, b) => ({ wall: a.wall + b.wall, rssKb: Math.max(a.rssKb, b.rssKb), user: a.user + b.user, sys: a.sys + b.sys }), { wall: 0, rssKb: 0, user: 0, sys: 0 });
}

/** Median of each field, over runs. */
export function medianSample(xs: readonly Sample[]): Sample {
  return { wall: median(xs.map((x) => x.wall)), rssKb: median(xs.map((x) => x.rssKb)), user: median(xs.map((x) => x.user)), sys: median(xs.map((x) => x.sys)) };
}

/** Allocated bytes under `dir`, each hard-linked inode counted once (du -sx). */
export function duBytes(...dirs: string[]): number {
  const out = output('du', ['-sxc', '--block-size=1', ...dirs]);
  return Number(out.split('\n').pop()!.split(/\s+/)[0]);
}

/** Wall-clock milliseconds of an in-process async function. */
export async function msOf(fn: () => Promise<unknown>): Promise<number> {
  const t = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t) / 1e6;
}
