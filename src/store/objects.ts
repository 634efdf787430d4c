/**
 * Objects: the store's unit of deduplication (the OSTree idea).
 *
 * An object is a regular file or a symlink at objects/XX/REST (XX/REST = its
 * 64-hex key) whose inode carries exactly the metadata in its key. Its mtime
 * (and atime) is fixed at 0, like OSTree's, because one inode is hard-linked
 * into every checkout and every layer that has the same file; a layer's
 * per-entry mtime is kept in the layer record only. Objects are never opened
 * for writing once committed; checkouts are mounted read-only, and `verify`
 * re-hashes them.
 *
 * Symlinks are objects too, as in OSTree's bare repositories: a checkout
 * hard-links them (link(2) does not follow a symlink) instead of creating a
 * new inode per symlink, which is the expensive part on many filesystems.
 *
 * The key is sha256 over a canonical header followed by the content:
 *   "berth-object-v1\n" (regular files) or "berth-symlink-v1\n"
 *   "<mode octal> <uid> <gid> <xattr count>\n"   (mode is 777 for symlinks)
 *   for each xattr, names sorted bytewise: "<name bytes> <value bytes>\n" name value
 *   content (for a symlink: its target)
 * Every variable part is length-prefixed, so the encoding is unambiguous, and
 * the first line keeps files and symlinks apart.
 *
 * xattrs (from PAX SCHILY.xattr.*) are in the key, and Node cannot read
 * them back from an inode; for the rare object that has any, they are kept
 * in a sidecar objects/XX/REST.xattrs (JSON name -> base64), written before
 * the object appears so that verify can recompute the key. Those a host may
 * carry are also set on the object itself (apply-xattrs.ts).
 */
import { createHash, type Hash } from 'node:crypto';
import { constants } from 'node:fs';
import { lstat, open, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { ObjectKey, ObjectMeta } from './types.ts';

const { O_RDONLY, O_NOFOLLOW } = constants;

export const OBJECT_KEY_RE = /^[0-9a-f]{64}$/;
export const XATTRS_SUFFIX = '.xattrs';

export function isObjectKey(s: string): s is ObjectKey {
  return OBJECT_KEY_RE.test(s);
}

export function objectPath(objectsDir: string, key: ObjectKey): string {
  return join(objectsDir, key.slice(0, 2), key.slice(2));
}

/** A hash already fed with the object's canonical header; feed it the content, then digest('hex'). */
export function objectHasher(meta: ObjectMeta, kind: 'file' | 'symlink' = 'file'): Hash {
  const h = createHash('sha256');
  const mode = kind === 'symlink' ? 0o777 : meta.mode;
  h.update(`berth-${kind === 'symlink' ? 'symlink' : 'object'}-v1\n${mode.toString(8)} ${meta.uid} ${meta.gid} ${meta.xattrs.size}\n`);
  for (const [name, value] of sortedXattrs(meta.xattrs)) {
    const n = Buffer.from(name, 'utf8');
    h.update(`${n.length} ${value.length}\n`);
    h.update(n);
    h.update(value);
  }
  return h;
}

/** The key of a symlink object. */
export function symlinkKey(meta: Omit<ObjectMeta, 'mode'>, target: string): ObjectKey {
  return objectHasher({ ...meta, mode: 0o777 }, 'symlink').update(target, 'utf8').digest('hex') as ObjectKey;
}

export function sortedXattrs(xattrs: ReadonlyMap<string, Buffer>): [string, Buffer][] {
  return [...xattrs].sort(([a], [b]) => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8')));
}

export function encodeXattrs(xattrs: ReadonlyMap<string, Buffer>): string {
  return JSON.stringify(Object.fromEntries(sortedXattrs(xattrs).map(([k, v]) => [k, v.toString('base64')])));
}

/** The sidecar's xattrs; an empty map when there is none. Throws on a malformed sidecar. */
export async function readXattrs(objectFile: string): Promise<Map<string, Buffer>> {
  let text: string;
  try {
    text = await readFile(objectFile + XATTRS_SUFFIX, 'utf8');
  } catch (e) {
    if ((e as { code?: unknown }).code === 'ENOENT') return new Map();
    throw e;
  }
  const v: unknown = JSON.parse(text);
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('xattr sidecar is not an object');
  const out = new Map<string, Buffer>();
  for (const [k, b64] of Object.entries(v)) {
    if (typeof b64 !== 'string') throw new Error('xattr sidecar value is not a string');
    out.set(k, Buffer.from(b64, 'base64'));
  }
  return out;
}

/**
 * Recompute an object's key from what is on disk: its inode's mode/uid/gid,
 * its sidecar's xattrs and its content (or symlink target), read without
 * following symlinks. `kind` is undefined for anything else.
 */
export async function hashObjectFile(file: string): Promise<{ key: string; size: number; kind: 'file' | 'symlink' | undefined }> {
  const st = await lstat(file);
  if (st.isSymbolicLink()) {
    const target = await readlink(file);
    return { key: symlinkKey({ uid: st.uid, gid: st.gid, xattrs: await readXattrs(file) }, target), size: st.size, kind: 'symlink' };
  }
  if (!st.isFile()) return { key: '', size: st.size, kind: undefined };
  const fh = await open(file, O_RDONLY | O_NOFOLLOW);
  try {
    const fst = await fh.stat();
    if (fst.ino !== st.ino) return { key: '', size: st.size, kind: undefined }; // replaced meanwhile
    const h = objectHasher({ mode: fst.mode & 0o7777, uid: fst.uid, gid: fst.gid, xattrs: await readXattrs(file) });
    let size = 0;
    const buf = Buffer.allocUnsafe(256 * 1024);
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      h.update(buf.subarray(0, bytesRead));
      size += bytesRead;
    }
    return { key: h.digest('hex'), size, kind: 'file' };
  } finally {
    await fh.close();
  }
}
