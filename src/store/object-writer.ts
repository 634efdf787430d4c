/**
 * Writing many small objects off the event loop: a couple of worker threads
 * that stage object files (and rename them into place) with plain
 * synchronous system calls, a batch per message.
 *
 * Why: a layer is mostly small files, and each one staged through
 * fs/promises costs five thread-pool round trips (lstat, open, write,
 * futimes, close) plus a rename: ~150,000 hand-offs for 25,000 files, each a
 * lock, a wake-up and a promise, competing in the same 4-thread pool with
 * zlib's decompression. Measured on a 2-core VM importing 25,000 files
 * (bench/, docs/performance.md): user CPU fell by half and the import got
 * 2-3x faster. Large files (whose bytes are not in memory), objects with
 * xattrs (sidecar) and everything else keep the fs/promises path.
 *
 * The worker's code is a string evaluated with no execArgv, so it runs the
 * same from dist/ and from the TypeScript sources (tsx), and starts fast.
 * Workers are shared by every import of the process, kept only while in use
 * (and a short idle while after), and never keep the process alive when idle.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';

/**
 * Where one import's objects go: an object KEY is staged as
 * `staging/XX/REST` (created with O_EXCL, its parent too when missing) and
 * lives at `objects/XX/REST`; if a file (or symlink) of its size is already
 * there, nothing is written. Paths are made in the worker from the key, so
 * 25,000 pairs of long path strings are neither built nor cloned per layer.
 * Staging names as long as the final ones, in directories as small as the
 * final ones, keep the kernel's directory scans short (a flat directory of
 * 25,000 short names made every create, lookup and rename scan ~250-entry
 * leaf blocks: measured as ~5% of a pull's CPU).
 */
export interface StageDirs {
  staging: string;
  objects: string;
}

/** A small object to stage: its bytes and what its inode must carry. */
export interface StageItem {
  /** The object's key (64 hex digits). */
  key: string;
  /** Regular file: content (slices of the stream's chunks). */
  chunks?: readonly Uint8Array[];
  /** Symlink: its target. */
  symlink?: string;
  size: number;
  /** Mode the file is created with (before the umask). */
  created: number;
  mode: number;
  uid: number;
  gid: number;
  chown: boolean;
  chmod: boolean;
}

/** Items per batch, and bytes per batch: a batch is sent when either is reached. */
const BATCH_ITEMS = 128;
const BATCH_BYTES = 256 * 1024;
/** Batch buffers travel to a worker and back (transferred, never copied) and are reused. */
const SPARE_BUFFERS = 8;
const RENAME_BATCH = 512;
/** Batches in flight per worker (one being written, one waiting). */
const PER_WORKER = 2;
const IDLE_MS = 2_000;

// Plain CommonJS: runs in the worker as is (eval), whatever loaded the parent.
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const fs = require('node:fs');
const path = require('node:path');
const { O_CREAT, O_EXCL, O_WRONLY, O_NOFOLLOW } = fs.constants;
const root = process.getuid() === 0;
function existing(p) {
  try { return fs.lstatSync(p, { throwIfNoEntry: false }); }
  catch (e) { if (e.code === 'ENOTDIR') return undefined; throw e; }
}
// Staging mirrors objects/ (XX/REST): make a fan-out directory on first use.
function inDir(p, fn) {
  try { return fn(); } catch (e) {
    if (e.code !== 'ENOENT') throw e;
    fs.mkdirSync(path.dirname(p), { recursive: true, mode: 0o700 }); // recursive: no EEXIST race between threads
    return fn();
  }
}
function own(fn) {
  try { fn(); } catch (e) { if (!(e.code === 'EPERM' && !root)) throw e; }
}
function rel(key) {
  return '/' + key.slice(0, 2) + '/' + key.slice(2);
}
function stage(m) {
  const data = new Uint8Array(m.buf);
  const written = new Uint8Array(m.items.length);
  let off = 0;
  for (let i = 0; i < m.items.length; i++) {
    const it = m.items[i];
    const tmp = m.dirs.staging + rel(it.key);
    const st = existing(m.dirs.objects + rel(it.key));
    if (it.symlink !== undefined) {
      if (!(st && st.isSymbolicLink() && st.size === it.size)) {
        inDir(tmp, () => fs.symlinkSync(it.symlink, tmp));
        if (it.chown) own(() => fs.lchownSync(tmp, it.uid, it.gid));
        fs.lutimesSync(tmp, 0, 0);
        written[i] = 1;
      }
      continue;
    }
    if (!(st && st.isFile() && st.size === it.size)) {
      const fd = inDir(tmp, () => fs.openSync(tmp, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW, it.created));
      try {
        for (let o = 0; o < it.size; ) o += fs.writeSync(fd, data, off + o, it.size - o);
        // chown before chmod: chown clears setuid/setgid.
        if (it.chown) own(() => fs.fchownSync(fd, it.uid, it.gid));
        if (it.chmod) fs.fchmodSync(fd, it.mode);
        fs.futimesSync(fd, 0, 0);
      } finally {
        fs.closeSync(fd);
      }
      written[i] = 1;
    }
    off += it.size;
  }
  return written;
}
parentPort.on('message', (m) => {
  try {
    if (m.op === 'stage') {
      const written = stage(m);
      parentPort.postMessage({ id: m.id, written, buf: m.buf }, [m.buf]);
    } else if (m.op === 'commit') {
      for (const key of m.keys) fs.renameSync(m.dirs.staging + rel(key), m.dirs.objects + rel(key));
      parentPort.postMessage({ id: m.id });
    } else {
      for (const [from, to] of m.items) fs.renameSync(from, to);
      parentPort.postMessage({ id: m.id });
    }
  } catch (e) {
    const error = { message: String(e && e.message), code: e && e.code, errno: e && e.errno, syscall: e && e.syscall, path: e && e.path };
    if (m.buf) parentPort.postMessage({ id: m.id, error, buf: m.buf }, [m.buf]);
    else parentPort.postMessage({ id: m.id, error });
  }
});
`;

interface Reply {
  id: number;
  written?: Uint8Array;
  buf?: ArrayBuffer;
  error?: { message: string; code?: string; errno?: number; syscall?: string; path?: string };
}

class PoolWorker {
  readonly worker: Worker;
  readonly pending = new Map<number, { resolve: (r: Reply) => void; reject: (e: unknown) => void }>();
  dead: unknown;

  constructor() {
    this.worker = new Worker(WORKER_SOURCE, { eval: true, execArgv: [], stdout: false, stderr: false, resourceLimits: { maxYoungGenerationSizeMb: 2, maxOldGenerationSizeMb: 64 } });
    this.worker.on('message', (r: Reply) => {
      const p = this.pending.get(r.id);
      if (!p) return;
      this.pending.delete(r.id);
      if (this.pending.size === 0) this.worker.unref();
      p.resolve(r);
    });
    const fail = (e: unknown) => {
      this.dead ??= e;
      for (const p of this.pending.values()) p.reject(e);
      this.pending.clear();
    };
    this.worker.on('error', fail);
    this.worker.on('exit', (code) => fail(new Error(`object writer thread exited (${code})`)));
    this.worker.unref(); // after the listeners, which would ref it again
  }

  send(id: number, message: unknown, transfer: ArrayBuffer[]): Promise<Reply> {
    if (this.dead !== undefined) return Promise.reject(this.dead);
    return new Promise((resolve, reject) => {
      if (this.pending.size === 0) this.worker.ref(); // an awaited reply keeps the process alive
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage(message, transfer);
    });
  }
}

class Pool {
  private workers: PoolWorker[] = [];
  private users = 0;
  private nextId = 0;
  private idle: NodeJS.Timeout | undefined;
  /** Batch buffers back from the workers, for the next batches. */
  private readonly spare: ArrayBuffer[] = [];

  /** One thread on a 2-core machine (measured: as fast as two, 15 MB less), two with more cores. */
  readonly size = Math.max(1, Math.min(2, availableParallelism() - 1));

  acquire(): void {
    this.users++;
    if (this.idle) clearTimeout(this.idle);
    this.idle = undefined;
    this.workers = this.workers.filter((w) => w.dead === undefined);
    while (this.workers.length < this.size) this.workers.push(new PoolWorker());
  }

  release(): void {
    if (--this.users > 0) return;
    this.idle = setTimeout(() => {
      this.idle = undefined;
      if (this.users > 0) return;
      for (const w of this.workers) void w.worker.terminate();
      this.workers = [];
      this.spare.length = 0;
    }, IDLE_MS);
    this.idle.unref();
  }

  /** A buffer of at least `bytes` for a batch: a spare one when it fits. */
  buffer(bytes: number): ArrayBuffer {
    while (this.spare.length > 0) {
      const b = this.spare.pop()!;
      if (b.byteLength >= bytes) return b;
    }
    return new ArrayBuffer(Math.max(bytes, BATCH_BYTES));
  }

  /** Run on the least busy worker; worker-side errors come back as errno-like Errors. */
  async run(message: Record<string, unknown>, transfer: ArrayBuffer[] = []): Promise<Reply> {
    let best = this.workers[0]!;
    for (const w of this.workers) if (w.pending.size < best.pending.size) best = w;
    const id = this.nextId++;
    const r = await best.send(id, { ...message, id }, transfer);
    if (r.buf && this.spare.length < SPARE_BUFFERS) this.spare.push(r.buf);
    if (r.error) {
      const { message: text, ...rest } = r.error;
      throw Object.assign(new Error(text), Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined)));
    }
    return r;
  }
}

const pool = new Pool();

/**
 * One import's writer: `add` batches items (waiting when enough batches are
 * in flight: the backpressure), `settle` waits for all, `rename` moves files
 * into place. The first failure is thrown by the next add/settle. `close`
 * must be called once, after settle (or after a failure).
 */
export class ObjectWriter {
  private batch: StageItem[] = [];
  private batchBytes = 0;
  private readonly inflight = new Set<Promise<void>>();
  private failure: { e: unknown } | undefined;
  private closed = false;

  /** `onWritten` is called for each item actually written (not found in the store). */
  constructor(
    private readonly dirs: StageDirs,
    private readonly onWritten: (item: StageItem) => void,
  ) {
    pool.acquire();
  }

  async add(item: StageItem): Promise<void> {
    if (this.failure) throw this.failure.e;
    const bytes = item.chunks ? item.size : 0;
    if (this.batch.length > 0 && this.batchBytes + bytes > BATCH_BYTES) await this.flush();
    this.batch.push(item);
    this.batchBytes += bytes;
    if (this.batch.length >= BATCH_ITEMS || this.batchBytes >= BATCH_BYTES) await this.flush();
  }

  async settle(): Promise<void> {
    if (this.batch.length > 0 && !this.failure) await this.flush();
    while (this.inflight.size > 0) await Promise.all(this.inflight);
    if (this.failure) throw this.failure.e;
  }

  /** After a failure elsewhere: drop what is not sent yet, let what is in flight end, release the threads. */
  async abandon(): Promise<void> {
    this.batch = [];
    this.batchBytes = 0;
    while (this.inflight.size > 0) await Promise.all(this.inflight);
    this.close();
  }

  /** Rename each [from, to], several batches at once; the first failure is thrown after all ended. */
  async rename(pairs: readonly (readonly [string, string])[]): Promise<void> {
    await inBatches(pairs, (items) => ({ op: 'rename', items }));
  }

  /** Move the staged objects `keys` into place (staging/XX/REST to objects/XX/REST), as rename does. */
  async commit(keys: readonly string[]): Promise<void> {
    await inBatches(keys, (batch) => ({ op: 'commit', dirs: this.dirs, keys: batch }));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    pool.release();
  }

  private async flush(): Promise<void> {
    const limit = pool.size * PER_WORKER;
    while (this.inflight.size >= limit) await Promise.race(this.inflight);
    if (this.failure) throw this.failure.e;
    const items = this.batch;
    const bytes = this.batchBytes;
    this.batch = [];
    this.batchBytes = 0;
    // The batch's bytes, one copy, into a buffer that is transferred (not copied) to the worker.
    const ab = pool.buffer(bytes);
    const buf = Buffer.from(ab, 0, bytes);
    let off = 0;
    for (const it of items) {
      for (const c of it.chunks ?? []) off += Buffer.from(c.buffer, c.byteOffset, c.byteLength).copy(buf, off);
      // The slices pin whole stream chunks; let them die young rather than ride out the batch into the old generation.
      it.chunks = undefined;
    }
    const meta = items.map(({ chunks: _chunks, ...rest }) => rest);
    const p: Promise<void> = pool
      .run({ op: 'stage', dirs: this.dirs, items: meta, buf: ab }, [ab])
      .then(
        (r) => {
          for (const [i, it] of items.entries()) if (r.written![i] === 1) this.onWritten(it);
        },
        (e: unknown) => {
          this.failure ??= { e };
        },
      )
      .finally(() => this.inflight.delete(p));
    this.inflight.add(p);
  }
}

/** Several messages of at most RENAME_BATCH items at once; the first failure is thrown after all ended. */
async function inBatches<T>(all: readonly T[], message: (batch: readonly T[]) => Record<string, unknown>): Promise<void> {
  const batches: (readonly T[])[] = [];
  for (let i = 0; i < all.length; i += RENAME_BATCH) batches.push(all.slice(i, i + RENAME_BATCH));
  const results = await Promise.allSettled(batches.map((b) => pool.run(message(b))));
  const failed = results.find((r) => r.status === 'rejected');
  if (failed) throw failed.reason;
}
