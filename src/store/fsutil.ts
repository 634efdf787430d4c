/**
 * Small filesystem and concurrency helpers for the store: bounded
 * parallelism, per-process staging directories, the umask probe, and the
 * in-process lock that keeps gc/repair away from imports and checkouts.
 * (Atomic writes and "if it exists" helpers are src/fsutil.ts.)
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { mkdir, open, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoCode } from '../errors.ts';

const { O_CREAT, O_EXCL, O_WRONLY, O_NOFOLLOW } = constants;

/**
 * The process umask, learnt by creating a file (process.umask() without an
 * argument is deprecated). Objects created with their final mode need no
 * chmod when the umask leaves that mode alone.
 */
export async function probeUmask(dir: string): Promise<number> {
  const file = join(dir, `${process.pid}.umask.${randomBytes(6).toString('hex')}`);
  const fh = await open(file, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW, 0o777);
  try {
    return ~(await fh.stat()).mode & 0o777;
  } finally {
    await fh.close();
    await rm(file, { force: true });
  }
}

/** Run `fn` over `items` with at most `limit` in flight; the first failure stops new starts and is thrown. */
export async function forEachLimited<T>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  let failed: { e: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (failed === undefined && next < items.length) {
      const i = next++;
      try {
        await fn(items[i]!, i);
      } catch (e) {
        failed ??= { e };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failed !== undefined) throw failed.e;
}

/**
 * Background tasks with at most `limit` in flight. `add` waits for a free
 * slot (that is the backpressure) and throws the first failure of an earlier
 * task; `settle` waits for all and throws the first failure.
 */
export class TaskQueue {
  private readonly inflight = new Set<Promise<void>>();
  private failure: { e: unknown } | undefined;

  constructor(private readonly limit: number) {}

  async add(task: () => Promise<void>): Promise<void> {
    while (this.inflight.size >= this.limit) await Promise.race(this.inflight);
    if (this.failure) throw this.failure.e;
    const p: Promise<void> = task()
      .then(
        () => undefined,
        (e: unknown) => {
          this.failure ??= { e };
        },
      )
      .finally(() => this.inflight.delete(p));
    this.inflight.add(p);
  }

  async settle(): Promise<void> {
    while (this.inflight.size > 0) await Promise.all(this.inflight);
    if (this.failure) throw this.failure.e;
  }
}

/**
 * Staging directories under ROOT/store/tmp, named "PID.WHAT.RANDOM" so that
 * entries of dead processes can be recognised and removed. (A pid reused by
 * a live process keeps a dead process's entry until that process exits;
 * harmless, it is only space. Processes sharing one berth root must share a
 * pid namespace, or they would see each other as dead.)
 */
export async function makeStaging(tmpDir: string, what: string): Promise<string> {
  const dir = join(tmpDir, `${process.pid}.${what}.${randomBytes(6).toString('hex')}`);
  await mkdir(dir, { mode: 0o700 });
  return dir;
}

/** Remove staging entries whose process is gone. Returns how many were removed. */
export async function clearStaleStaging(tmpDir: string): Promise<number> {
  let removed = 0;
  for (const name of await readdir(tmpDir)) {
    const pid = Number(/^(\d+)\./.exec(name)?.[1] ?? NaN);
    if (Number.isSafeInteger(pid) && pid > 0 && (pid === process.pid || processAlive(pid))) continue;
    await rm(join(tmpDir, name), { recursive: true, force: true });
    removed++;
  }
  return removed;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return errnoCode(e) === 'EPERM'; // exists, owned by someone else
  }
}

/**
 * A readers-writer lock, FIFO so that a waiting writer is not starved.
 * Imports, puts and checkouts share it; gc and repair take it exclusively,
 * because they delete objects that a concurrent import may be about to rely
 * on. It only orders callers inside this process: across processes, berth's
 * state lock (ops/context.ts `locked`) serialises pull, rmi, prune and
 * verify --repair.
 */
export class RwLock {
  private readers = 0;
  private writer = false;
  private readonly waiting: { exclusive: boolean; wake: () => void }[] = [];

  async shared<T>(fn: () => Promise<T>): Promise<T> {
    await this.acquire(false);
    try {
      return await fn();
    } finally {
      this.readers--;
      this.pump();
    }
  }

  async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    await this.acquire(true);
    try {
      return await fn();
    } finally {
      this.writer = false;
      this.pump();
    }
  }

  private acquire(exclusive: boolean): Promise<void> {
    return new Promise((wake) => {
      this.waiting.push({ exclusive, wake });
      this.pump();
    });
  }

  private pump(): void {
    while (this.waiting.length > 0 && !this.writer) {
      const head = this.waiting[0]!;
      if (head.exclusive) {
        if (this.readers > 0) return;
        this.writer = true;
      } else {
        this.readers++;
      }
      this.waiting.shift();
      head.wake();
    }
  }
}
