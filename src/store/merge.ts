/**
 * The merged tree of an image, computed in memory from its layer records in
 * order, before anything is written. This is where layering happens:
 *  - whiteouts and opaque markers only hide what lower layers left
 *    (image-spec layer.md), so a layer's whiteouts are applied before its
 *    other entries, whatever their position in the tar;
 *  - an entry replaces whatever is at its path: a file replaces a directory
 *    (and everything in it), a directory replaces a file; a directory entry
 *    over an existing directory only updates its metadata;
 *  - parents are resolved like filepath-securejoin: a parent that
 *    is a symlink in the merged tree is followed, but re-rooted at the image
 *    root (absolute targets start at the root, ".." clamps at it), so
 *    nothing can be placed outside; missing parents are created 0755
 *    root:root; a parent that is a file is an error.
 * The final component of an entry is never followed.
 *
 * The result contains no symlinks on any directory path, so materialising
 * it (checkout.ts) never has to look at the disk to know the structure.
 */
import { layerInvalid, MAX_PATH_BYTES, quoteName } from './secure-path.ts';
import type { LayerRecord, ObjectKey } from './types.ts';

export interface DirNode {
  kind: 'dir';
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  children: Map<string, TreeNode>;
}
export interface FileNode {
  kind: 'file';
  object: ObjectKey;
  size: number;
}
export interface SymlinkNode {
  kind: 'symlink';
  target: string;
  uid: number;
  gid: number;
  object: ObjectKey;
}
export interface SpecialNode {
  kind: 'special';
  type: 'char' | 'block' | 'fifo';
}
export type TreeNode = DirNode | FileNode | SymlinkNode | SpecialNode;

/** Symlinks followed while resolving one path before giving up (like filepath-securejoin). */
const MAX_SYMLINKS = 255;

export function newRoot(): DirNode {
  return { kind: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: 0, children: new Map() };
}

/** Apply one layer's record onto `root`. `layer` names it in messages. */
export function applyRecord(root: DirNode, record: LayerRecord, layer: string): void {
  for (const e of record.records) {
    if (e.type === 'whiteout') {
      const [dir, base] = split(e.path);
      resolveDir(root, dir, false, e.path, layer)?.children.delete(base);
    } else if (e.type === 'opaque') {
      resolveDir(root, e.path, false, e.path, layer)?.children.clear();
    }
  }
  for (const e of record.records) {
    if (e.type === 'whiteout' || e.type === 'opaque') continue;
    const [dirPath, base] = split(e.path);
    const dir = resolveDir(root, dirPath, true, e.path, layer)!;
    switch (e.type) {
      case 'dir': {
        const existing = dir.children.get(base);
        if (existing?.kind === 'dir') {
          existing.mode = e.mode;
          existing.uid = e.uid;
          existing.gid = e.gid;
          existing.mtime = e.mtime;
        } else {
          dir.children.set(base, { kind: 'dir', mode: e.mode, uid: e.uid, gid: e.gid, mtime: e.mtime, children: new Map() });
        }
        break;
      }
      case 'file':
      case 'hardlink':
        dir.children.set(base, { kind: 'file', object: e.object, size: e.size });
        break;
      case 'symlink':
        dir.children.set(base, { kind: 'symlink', target: e.target, uid: e.uid, gid: e.gid, object: e.object });
        break;
      case 'char':
      case 'block':
      case 'fifo':
        dir.children.set(base, { kind: 'special', type: e.type });
        break;
    }
  }
}

/**
 * The directory `rel` names in the tree, following symlinks within the root.
 * With `create`, missing directories are made and a non-directory on the
 * way is an error; without, null is returned for either.
 */
export function resolveDir(root: DirNode, rel: string, create: boolean, name: string, layer: string): DirNode | null {
  if (rel === '') return root;
  const stack: DirNode[] = [root];
  // Byte length of the resolved path at each depth, to refuse paths no filesystem could hold.
  const lengths: number[] = [0];
  const todo = rel.split('/').reverse();
  let links = 0;
  while (todo.length > 0) {
    const part = todo.pop()!;
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (stack.length > 1) {
        stack.pop();
        lengths.pop();
      }
      continue;
    }
    const here = stack[stack.length - 1]!;
    let child = here.children.get(part);
    if (child?.kind === 'symlink') {
      if (++links > MAX_SYMLINKS) throw layerInvalid(`${layer}: too many levels of symbolic links resolving ${quoteName(name)}`);
      if (child.target.startsWith('/')) {
        stack.length = 1;
        lengths.length = 1;
      }
      const parts = child.target.split('/');
      for (let i = parts.length - 1; i >= 0; i--) todo.push(parts[i]!);
      continue;
    }
    if (child === undefined) {
      if (!create) return null;
      child = { kind: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: 0, children: new Map() };
      here.children.set(part, child);
    } else if (child.kind !== 'dir') {
      if (!create) return null;
      throw layerInvalid(`${layer}: entry ${quoteName(name)} has a parent that is not a directory`);
    }
    const length = lengths[lengths.length - 1]! + 1 + Buffer.byteLength(part);
    if (length > MAX_PATH_BYTES) throw layerInvalid(`${layer}: entry ${quoteName(name)} resolves to a path longer than ${MAX_PATH_BYTES} bytes`);
    stack.push(child);
    lengths.push(length);
  }
  return stack[stack.length - 1]!;
}

/** "a/b/c" -> ["a/b", "c"]; "c" -> ["", "c"]. */
function split(rel: string): [string, string] {
  const i = rel.lastIndexOf('/');
  return i < 0 ? ['', rel] : [rel.slice(0, i), rel.slice(i + 1)];
}
