/**
 * File helpers shared by every part (the store, the deployments, trust):
 * the one atomic write, and "if it exists" forms of stat, readdir and
 * friends that treat only a missing path as missing and throw every other
 * error (EACCES, EIO, ELOOP… are not "nothing there").
 */
import { randomBytes } from 'node:crypto';
import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { syncDir } from './durable.ts';
import { errnoCode } from './errors.ts';

const { O_CREAT, O_EXCL, O_WRONLY, O_NOFOLLOW } = constants;

/** The errors that mean "not there": ENOENT, and ENOTDIR (a parent is not a directory, so nothing is below it). */
export function isMissing(e: unknown): boolean {
  const code = errnoCode(e);
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/** `op`'s value, or undefined when it failed because the path is missing (isMissing); other errors are thrown. */
export async function ifExists<T>(op: Promise<T>): Promise<T | undefined> {
  try {
    return await op;
  } catch (e) {
    if (isMissing(e)) return undefined;
    throw e;
  }
}

/** lstat(2), or undefined when nothing is there. */
export function lstatIfExists(p: string): Promise<Stats | undefined> {
  return ifExists(fs.lstat(p));
}

/** stat(2) (following symlinks), or undefined when nothing is there. */
export function statIfExists(p: string): Promise<Stats | undefined> {
  return ifExists(fs.stat(p));
}

/** Whether anything (a dangling symlink too) is at `p`. */
export async function exists(p: string): Promise<boolean> {
  return (await lstatIfExists(p)) !== undefined;
}

/** A directory's entry names, or none when the directory does not exist (other errors are thrown). */
export async function readdirIfExists(dir: string): Promise<string[]> {
  return (await ifExists(fs.readdir(dir))) ?? [];
}

export interface AtomicWriteOptions {
  /** Default 0o644, narrowed by the umask unless `exactMode`. */
  mode?: number;
  /** Set `mode` exactly (fchmod before the rename), whatever the umask. */
  exactMode?: boolean;
  /**
   * Where the temp file goes: a directory on the same filesystem (the
   * store's staging directory). Default: `file`'s directory, as
   * `.NAME.tmp-PID.RANDOM` (recovery removes those a kill left).
   */
  tempDir?: string;
}

/**
 * Replace `file` with `data` so that a crash leaves either the old file or
 * the new one: a fresh temp file (O_EXCL, never through a symlink) is
 * written and fsynced, renamed over `file`, and `file`'s directory is
 * fsynced. On failure the temp file is removed.
 */
export async function writeFileAtomic(file: string, data: string | Buffer, options: AtomicWriteOptions = {}): Promise<void> {
  const mode = options.mode ?? 0o644;
  const unique = `${process.pid}.${randomBytes(6).toString('hex')}`;
  const tmp = options.tempDir === undefined
    ? path.join(path.dirname(file), `.${path.basename(file)}.tmp-${unique}`)
    : path.join(options.tempDir, `w.${unique}`);
  const fh = await fs.open(tmp, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW, mode);
  try {
    try {
      await fh.writeFile(data);
      if (options.exactMode === true) await fh.chmod(mode);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.rename(tmp, file);
  } catch (e) {
    await fs.rm(tmp, { force: true });
    throw e;
  }
  await syncDir(path.dirname(file));
}

/** Point `link` at `target` atomically (a temp symlink renamed over it). */
export async function replaceSymlink(target: string, link: string): Promise<void> {
  const tmp = `${link}.tmp-${process.pid}`;
  await fs.rm(tmp, { force: true });
  await fs.symlink(target, tmp);
  await fs.rename(tmp, link);
  await syncDir(path.dirname(link));
}

/** A symlink's target, or undefined when nothing is there or it is not a symlink (EINVAL); other errors are thrown. */
export async function readlinkIfLink(p: string): Promise<string | undefined> {
  try {
    return await fs.readlink(p);
  } catch (e) {
    if (isMissing(e) || errnoCode(e) === 'EINVAL') return undefined;
    throw e;
  }
}

/** Why readRegularFile refused a file. */
export type FileRefusal = 'symlink' | 'not-regular' | 'too-large' | 'changed';

export class FileRefusedError extends Error {
  override name = 'FileRefusedError';
  constructor(
    readonly why: FileRefusal,
    /** for 'not-regular': what it is ("a FIFO"); for 'too-large': the size seen */
    readonly detail: string,
  ) {
    super(`${why}: ${detail}`);
  }
}

/** "a directory", "a FIFO"... for messages about a file that should have been a regular one. */
export function describeFileType(st: Stats): string {
  if (st.isSymbolicLink()) return 'a symbolic link';
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  if (st.isBlockDevice() || st.isCharacterDevice()) return 'a device';
  return 'not a regular file';
}

/**
 * Read an untrusted regular file of at most `cap` bytes without following a
 * symlink at its last component (O_NOFOLLOW), without blocking on a FIFO
 * (O_NONBLOCK) and without taking a terminal (O_NOCTTY). With `expected`
 * (an lstat taken before), the opened file must be that same inode. Refusals
 * throw FileRefusedError; a missing file throws the ENOENT as is. `onOpen`
 * may check the open descriptor (e.g. where it really is) before reading.
 */
export async function readRegularFile(file: string, cap: number, expected?: Stats, onOpen?: (fd: number) => Promise<void>): Promise<Buffer> {
  const fh = await fs.open(file, constants.O_RDONLY | O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY).catch((e: unknown) => {
    if (errnoCode(e) === 'ELOOP') throw new FileRefusedError('symlink', 'a symbolic link');
    throw e;
  });
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new FileRefusedError('not-regular', describeFileType(st));
    if (expected !== undefined && (st.ino !== expected.ino || st.dev !== expected.dev)) throw new FileRefusedError('changed', 'it changed while being read');
    if (st.size > cap) throw new FileRefusedError('too-large', `${st.size} bytes`);
    if (onOpen !== undefined) await onOpen(fh.fd);
    const buf = Buffer.alloc(Math.min(st.size, cap) + 1);
    let n = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, n, buf.length - n, n);
      if (bytesRead === 0) break;
      n += bytesRead;
      if (n === buf.length) break;
    }
    if (n > cap) throw new FileRefusedError('too-large', `more than ${cap} bytes`);
    return buf.subarray(0, n);
  } finally {
    await fh.close();
  }
}

/**
 * readRegularFile's synchronous twin, for many small files in a row (an
 * advisory database: tens of thousands of files, where the promise API's
 * per-call overhead is most of the time). Same flags, checks and refusals.
 */
export function readRegularFileSync(file: string, cap: number): Buffer {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (e) {
    if (errnoCode(e) === 'ELOOP') throw new FileRefusedError('symlink', 'a symbolic link');
    throw e;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new FileRefusedError('not-regular', describeFileType(st));
    if (st.size > cap) throw new FileRefusedError('too-large', `${st.size} bytes`);
    const buf = Buffer.alloc(Math.min(st.size, cap) + 1);
    let n = 0;
    for (;;) {
      const got = readSync(fd, buf, n, buf.length - n, n);
      if (got === 0) break;
      n += got;
      if (n === buf.length) break;
    }
    if (n > cap) throw new FileRefusedError('too-large', `more than ${cap} bytes`);
    return buf.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}
