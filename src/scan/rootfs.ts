/**
 * Reading files of an untrusted rootfs without leaving it.
 *
 * A path is resolved one component at a time with lstat: a symlink is
 * followed but re-rooted at the rootfs (an absolute target starts at the
 * rootfs, ".." stops at it), as filepath-securejoin and the store's merged
 * tree (store/merge.ts) do, so `etc/os-release -> ../usr/lib/os-release`
 * works and `var/lib/dpkg/status -> /etc/shadow` reads the image's own
 * /etc/shadow, never the host's. The last component is opened with
 * O_NOFOLLOW (fsutil's readRegularFile: regular files only, size-capped),
 * and the open descriptor's real path (/proc/self/fd) must lie inside the
 * rootfs, which also catches a tree changed between lstat and open.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { BerthError } from '../errors.ts';
import { FileRefusedError, isMissing, lstatIfExists, readRegularFile } from '../fsutil.ts';

/** Symlinks followed while resolving one path (Linux's limit). */
const MAX_SYMLINKS = 40;

const HOSTILE_HINT = 'the image is malformed or hostile; do not use it';

function unsafe(rel: string, why: string): BerthError {
  return new BerthError('UNSAFE_PATH', `unsafe path ${JSON.stringify(`/${rel}`)} in the image: ${why}`, { hint: HOSTILE_HINT });
}

/**
 * The host path of `rel` inside `rootfs` with every symlink on the way
 * resolved within the rootfs; the last component is itself resolved only
 * when it is a symlink too. undefined when nothing is there.
 */
export async function resolveInRootfs(rootfs: string, rel: string): Promise<string | undefined> {
  const done: string[] = [];
  const todo = rel.split('/').reverse();
  let links = 0;
  while (todo.length > 0) {
    const part = todo.pop()!;
    if (part === '' || part === '.') continue;
    if (part === '..') {
      done.pop();
      continue;
    }
    if (part.includes('\0')) throw unsafe(rel, 'a path with a NUL byte');
    const here = path.join(rootfs, ...done, part);
    const st = await lstatIfExists(here);
    if (st === undefined) return undefined;
    if (st.isSymbolicLink()) {
      if (++links > MAX_SYMLINKS) throw unsafe(rel, 'too many levels of symbolic links');
      const target = await fs.readlink(here);
      if (target.startsWith('/')) done.length = 0;
      const parts = target.split('/');
      for (let i = parts.length - 1; i >= 0; i--) todo.push(parts[i]!);
      continue;
    }
    // A file in the middle of the path: nothing is below it.
    if (todo.some((p) => p !== '' && p !== '.') && !st.isDirectory()) return undefined;
    done.push(part);
  }
  return path.join(rootfs, ...done);
}

/** Read `rel` of `rootfs`: a regular file of at most `cap` bytes, or undefined when it does not exist. */
export async function readRootfsFile(rootfs: string, rel: string, cap: number): Promise<Buffer | undefined> {
  const root = await fs.realpath(rootfs);
  const file = await resolveInRootfs(root, rel);
  if (file === undefined) return undefined;
  try {
    return await readRegularFile(file, cap, undefined, async (fd) => {
      const real = await fs.readlink(`/proc/self/fd/${fd}`);
      if (real !== root && !real.startsWith(root === '/' ? '/' : `${root}/`)) throw unsafe(rel, 'it resolves outside the image');
    });
  } catch (e) {
    if (isMissing(e)) return undefined;
    if (!(e instanceof FileRefusedError)) throw e;
    if (e.why === 'too-large') throw new BerthError('SCAN_FAILED', `/${rel} in the image is too large to scan (${e.detail}, the limit is ${cap} bytes)`, { hint: HOSTILE_HINT });
    throw unsafe(rel, `it is ${e.detail}`);
  }
}

/** The names in directory `rel` of `rootfs` (resolved as above), or undefined when it is not a directory. */
export async function listRootfsDir(rootfs: string, rel: string, maxEntries: number): Promise<string[] | undefined> {
  const root = await fs.realpath(rootfs);
  const dir = await resolveInRootfs(root, rel);
  if (dir === undefined) return undefined;
  const st = await lstatIfExists(dir);
  if (!st?.isDirectory()) return undefined;
  const names: string[] = [];
  const handle = await fs.opendir(dir);
  for await (const entry of handle) {
    if (names.length >= maxEntries) throw new BerthError('SCAN_FAILED', `/${rel} in the image has more than ${maxEntries} entries`, { hint: HOSTILE_HINT });
    names.push(entry.name);
  }
  return names.sort();
}

/** Whether `rel` exists in `rootfs` (resolved as above). */
export async function existsInRootfs(rootfs: string, rel: string): Promise<boolean> {
  return (await resolveInRootfs(await fs.realpath(rootfs), rel)) !== undefined;
}
