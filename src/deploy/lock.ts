/**
 * One lock around every state change, so CLI calls, the agent and the timer
 * never interleave. Node has no flock(2), so a small `flock` child (util-linux)
 * takes a kernel lock on ROOT/lock and holds it while its stdin is open: if
 * berth dies, even by SIGKILL, the pipe closes, the child exits and the kernel
 * drops the lock. No stale lock files, no PID-reuse guessing.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { BerthError } from '../errors.ts';

export interface LockOwner {
  pid: number;
  what: string;
  since: string;
}

export interface LockOptions {
  /** Give up after this long; undefined waits forever. */
  timeoutMs?: number;
  /** Told once when the lock is busy, with its owner if known. */
  onWait?: (owner: LockOwner | undefined) => void;
}

export interface Lock {
  release(): Promise<void>;
}

const READY = 'locked';

/** flock's exit status when the lock is busy (or the wait timed out); any other failure is an error, not "busy". */
const BUSY = 75;

/** Try to take the lock once; resolves undefined when it is busy (or the wait timed out). */
function tryFlock(file: string, waitSeconds: number | undefined): Promise<Lock | undefined> {
  const wait = waitSeconds === undefined ? [] : waitSeconds === 0 ? ['-n'] : ['-w', String(waitSeconds)];
  const child = spawn('flock', ['-x', '-E', String(BUSY), ...wait, file, 'sh', '-c', `echo ${READY}; exec cat >/dev/null`], { stdio: ['pipe', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.once('error', (e) =>
      reject(new BerthError('MISSING_TOOL', `cannot run flock to lock ${file}: ${e.message}`, { hint: 'install util-linux', cause: e })),
    );
    child.stderr.on('data', (d: Buffer) => {
      if (err.length < 4096) err += d.toString();
    });
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes(READY)) {
        child.stdout.removeAllListeners('data');
        resolve({
          release: async () => {
            child.stdin.end();
            await exited;
          },
        });
      }
    });
    child.once('exit', (code) => {
      if (out.includes(READY)) return;
      if (code === BUSY) return resolve(undefined);
      const why = err.trim().split('\n')[0]?.replace(/^flock: /, '') || `flock exited with status ${code}`;
      const denied = /permission denied/i.test(why) && process.getuid?.() !== 0;
      reject(new BerthError(denied ? 'NOT_ROOT' : 'IO_ERROR', `cannot lock ${file}: ${why}`, { hint: denied ? 'berth changes state as root only' : `check ${path.dirname(file)}` }));
    });
  });
}

async function readOwner(file: string): Promise<LockOwner | undefined> {
  try {
    return JSON.parse(await fs.readFile(file, 'utf8')) as LockOwner;
  } catch {
    return undefined;
  }
}

export async function acquireLock(root: string, what: string, options: LockOptions = {}): Promise<Lock> {
  await fs.mkdir(root, { recursive: true, mode: 0o700 });
  const file = path.join(root, 'lock');
  const ownerFile = path.join(root, 'lock.owner');
  let lock = await tryFlock(file, 0);
  if (lock === undefined) {
    const owner = await readOwner(ownerFile);
    options.onWait?.(owner);
    const wait = options.timeoutMs === undefined ? undefined : Math.max(1, Math.ceil(options.timeoutMs / 1000));
    lock = await tryFlock(file, wait);
    if (lock === undefined) {
      throw new BerthError('LOCKED', `berth is busy: pid ${owner?.pid ?? '?'} (${owner?.what ?? 'unknown'}) holds ${file} since ${owner?.since ?? '?'}`, {
        hint: 'wait for it to finish, or raise --lock-timeout',
      });
    }
  }
  // For the message a waiting caller prints; the kernel lock is what counts.
  const me: LockOwner = { pid: process.pid, what, since: new Date().toISOString() };
  await fs.writeFile(ownerFile, JSON.stringify(me), { mode: 0o600 });
  const held = lock;
  return {
    release: async () => {
      await fs.rm(ownerFile, { force: true });
      await held.release();
    },
  };
}

export async function withLock<T>(root: string, what: string, options: LockOptions, fn: () => Promise<T>): Promise<T> {
  const lock = await acquireLock(root, what, options);
  try {
    return await fn();
  } finally {
    await lock.release();
  }
}
