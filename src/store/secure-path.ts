/**
 * Path handling for untrusted archive entries, scoped to a root directory.
 *
 * Two steps, kept apart on purpose:
 *  - `normaliseEntryPath` is purely lexical: it turns an entry name into a
 *    clean relative path and rejects names that try to leave the root.
 *  - `resolveDirIn` walks a relative directory path on disk the way
 *    filepath-securejoin / umoci do: each component is lstat'ed, symlinks are
 *    followed but re-rooted at `root` (absolute targets are relative to root,
 *    `..` clamps at root), so the result is a real directory inside root that
 *    contains no symlinks.
 *
 * The walk is only race-free if nobody else modifies the tree meanwhile; that
 * holds because the tree is private to berth while a layer is applied.
 */
import { lstat, mkdir, readlink, chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { BerthError, errnoCode } from '../errors.ts';

/** Longest entry path or link target we accept (Linux PATH_MAX). */
export const MAX_PATH_BYTES = 4096;
/** Symlinks followed while resolving one path before giving up (like securejoin). */
const MAX_SYMLINKS = 255;

const HOSTILE_HINT = 'the image is malformed or hostile; do not use it';

/** A short, terminal-safe rendering of an untrusted name for messages. */
export function quoteName(name: string): string {
  return JSON.stringify(name.length > 200 ? `${name.slice(0, 200)}...` : name);
}

export function unsafePath(name: string, why: string): BerthError {
  return new BerthError('UNSAFE_PATH', `unsafe path ${quoteName(name)} in layer: ${why}`, { hint: HOSTILE_HINT });
}

export function layerInvalid(message: string, cause?: unknown): BerthError {
  return new BerthError('LAYER_INVALID', message, { hint: HOSTILE_HINT, cause });
}

/**
 * Lexically normalise an entry name to a relative path ("" means the root).
 * Leading "/" and "./" are dropped (absolute names are made relative to the
 * root, as every image tool does); "." and empty components are dropped; ".."
 * pops a component and is rejected if it would climb above the root.
 * `shown` is what messages name (e.g. "link -> target").
 */
export function normaliseEntryPath(name: string, shown = name): string {
  if (Buffer.byteLength(name) > MAX_PATH_BYTES) {
    throw layerInvalid(`layer entry path longer than ${MAX_PATH_BYTES} bytes: ${quoteName(shown)}`);
  }
  if (name.includes('\0')) throw unsafePath(shown, 'contains a NUL byte');
  const out: string[] = [];
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (out.length === 0) throw unsafePath(shown, 'it leaves the root directory');
      out.pop();
      continue;
    }
    out.push(part);
  }
  return out.join('/');
}

/** Join a resolved relative directory ("" = root) and a name. */
export function relJoin(dir: string, name: string): string {
  return dir === '' ? name : `${dir}/${name}`;
}

/**
 * Resolve the relative directory path `rel` inside `root`, following symlinks
 * only within root. Returns the resolved relative path ("" = root), which has
 * no symlink components. With `create`, missing directories are made (0755,
 * like Docker does for parents a layer does not list); without it, returns
 * null when a component is missing or is not a directory.
 * `name` is the entry name, for messages.
 */
export async function resolveDirIn(root: string, rel: string, create: boolean, name: string): Promise<string | null> {
  const done: string[] = [];
  // Components still to walk; symlink targets are spliced in at the front.
  const todo = rel.split('/');
  let links = 0;
  while (todo.length > 0) {
    const part = todo.shift()!;
    if (part === '' || part === '.') continue;
    if (part === '..') {
      done.pop(); // clamps at root: popping an empty list is a no-op
      continue;
    }
    const here = join(root, ...done, part);
    let st;
    try {
      st = await lstat(here);
    } catch (e) {
      if (errnoCode(e) !== 'ENOENT') throw e;
      if (!create) return null;
      await mkdir(here, { mode: 0o755 });
      await chmod(here, 0o755); // not subject to the umask
      done.push(part);
      continue;
    }
    if (st.isSymbolicLink()) {
      if (++links > MAX_SYMLINKS) throw layerInvalid(`too many levels of symbolic links resolving ${quoteName(name)}`);
      const target = await readlink(here);
      if (target.startsWith('/')) done.length = 0; // absolute targets are relative to root
      todo.unshift(...target.split('/'));
      continue;
    }
    if (!st.isDirectory()) {
      if (!create) return null;
      throw layerInvalid(`layer entry ${quoteName(name)} has a parent that is not a directory`);
    }
    done.push(part);
  }
  return done.join('/');
}
