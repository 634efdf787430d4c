/**
 * Path handling for untrusted archive entries: `normaliseEntryPath` turns an
 * entry name into a clean relative path, purely lexically, and rejects names
 * that try to leave the root. Symlinks in parents are resolved later, in the
 * merged tree at checkout (merge.ts), never on disk.
 */
import { BerthError } from '../errors.ts';

/** Longest entry path or link target we accept (Linux PATH_MAX). */
export const MAX_PATH_BYTES = 4096;

/** Most entries accepted in one layer; bounds memory spent on bookkeeping. */
export const MAX_LAYER_ENTRIES = 1_000_000;

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

