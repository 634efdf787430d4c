/**
 * Materialising a merged tree (merge.ts) as a directory of hard links to
 * objects. The target is created here and private to us until we finish, and
 * the tree has no symlinks on directory paths, so every path we hand the
 * kernel consists of directories we just made: no lstat, no resolution on
 * disk, no races to defend against.
 *
 * Order: directories top-down (the target stays 0700 until the end, so
 * nothing below is reachable by others meanwhile), then files and symlinks,
 * then directory owner/mode/mtime deepest first (after the children, whose
 * creation changes a directory's mtime), then the root, 0755 root:root. Each
 * phase runs with bounded parallelism (IO_IN_FLIGHT): enough to keep libuv's
 * thread pool busy (measured: 32 beats 4-16 and equals 64), without queueing
 * the whole tree at once.
 *
 * Regular files and symlinks are link(2)s of their objects, as in OSTree: a
 * new inode per symlink can cost as much as all the links together, and
 * link(2) never follows a symlink. They carry the object's mode, owner and
 * mtime (0). When hard links are impossible (EXDEV: the target is on another
 * filesystem, or another mount of it) the checkout fails with a hint, unless
 * `copy` is set: then files are copied (reflinked where the filesystem can)
 * and symlinks created. An object that already has the filesystem's maximum
 * number of links (EMLINK; 65000 on ext4) is copied for that one entry.
 */
import { constants } from 'node:fs';
import { chmod, copyFile, lchown, link, lstat, lutimes, mkdir, rm, symlink, utimes } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { BerthError, errnoCode } from '../errors.ts';
import { lstatIfExists } from '../fsutil.ts';
import { forEachLimited } from './fsutil.ts';
import { corrupt } from './images.ts';
import type { DirNode, SymlinkNode } from './merge.ts';
import { applyXattrs } from './apply-xattrs.ts';
import { objectPath, readXattrs } from './objects.ts';
import { layerInvalid, MAX_PATH_BYTES, quoteName } from './secure-path.ts';
import type { CheckoutOptions, CheckoutResult, ObjectKey } from './types.ts';

const IO_IN_FLIGHT = 32;

interface DirItem {
  path: string;
  node: DirNode;
}

/** A file or symlink to place: a hard link to `object`, or (if impossible) a copy or a new symlink. */
interface Placement {
  path: string;
  object: ObjectKey;
  symlink?: SymlinkNode;
}

/** Write `root` to the new directory `target`. `umask` is the process umask (fsutil.ts probeUmask). */
export async function materialise(root: DirNode, target: string, objectsDir: string, umask: number, options: CheckoutOptions = {}): Promise<CheckoutResult> {
  // Collect everything first, breadth first so that parents precede children.
  const levels: DirItem[][] = [];
  // Files first, then symlinks: both are hard links to objects.
  const files: Placement[] = [];
  const symlinks: Placement[] = [];
  let level: DirItem[] = [{ path: target, node: root }];
  while (level.length > 0) {
    const next: DirItem[] = [];
    for (const { path, node } of level) {
      for (const [name, child] of node.children) {
        const p = `${path}/${name}`;
        // UTF-8 needs at most 3 bytes per UTF-16 unit: only long strings need measuring.
        if (p.length * 3 >= MAX_PATH_BYTES && Buffer.byteLength(p) >= MAX_PATH_BYTES) {
          throw layerInvalid(`image path ${quoteName(p.slice(target.length + 1))} is too long to check out at ${target}`);
        }
        switch (child.kind) {
          case 'dir':
            next.push({ path: p, node: child });
            break;
          case 'file':
            files.push({ path: p, object: child.object });
            break;
          case 'symlink':
            symlinks.push({ path: p, object: child.object, symlink: child });
            break;
          case 'special':
            options.onSkip?.(p.slice(target.length + 1), `${child.type} entries are not created (containers get /dev from a tmpfs)`);
            break;
        }
      }
    }
    if (next.length > 0) levels.push(next);
    level = next;
  }

  try {
    await mkdir(target, { mode: 0o700 });
  } catch (e) {
    if (errnoCode(e) === 'EEXIST') throw new BerthError('IO_ERROR', `checkout target ${target} already exists`, { hint: 'check out into a new directory' });
    throw ioError(e, target);
  }
  let copied = false;
  const root0 = process.getuid?.() === 0 && process.getgid?.() === 0;
  // A directory is made with its final mode when that needs no chmod: no
  // special bits (a setgid directory would hand its group to what we create
  // in it) and nothing the umask removes. As root, a read-only mode does not
  // stop us filling it; others cannot get past the 0700 target meanwhile.
  const direct = (mode: number): boolean => root0 && (mode & 0o7000) === 0 && (mode & umask) === 0;
  try {
    for (const items of levels) await forEachLimited(items, IO_IN_FLIGHT, ({ path, node }) => mkdir(path, { mode: direct(node.mode) ? node.mode : 0o700 }));

    const linker = new Linker(objectsDir, target, options);
    const all = files.length === 0 ? symlinks : symlinks.length === 0 ? files : [...files, ...symlinks];
    if (all.length > 0) await linker.first(all[0]!);
    await forEachLimited(all.slice(1), IO_IN_FLIGHT, (p) => linker.place(p));
    copied = linker.copied;

    // Deepest first, a level at a time: a directory's
    // mtime is set after everything below it is final.
    for (let i = levels.length - 1; i >= 0; i--) {
      await forEachLimited(levels[i]!, IO_IN_FLIGHT, async ({ path, node }) => {
        // chown before chmod: chown may clear setgid.
        if (!root0 || node.uid !== 0 || node.gid !== 0) await lchown(path, node.uid, node.gid).catch(ignoreIfUnprivileged);
        if (!direct(node.mode)) await chmod(path, node.mode);
        await utimes(path, node.mtime, node.mtime);
      });
    }
    const dirs = levels.reduce((n, l) => n + l.length, 0);
    await lchown(target, 0, 0).catch(ignoreIfUnprivileged);
    await chmod(target, 0o755);
    return { files: files.length, dirs, links: symlinks.length, copied };
  } catch (e) {
    await rm(target, { recursive: true, force: true }).catch(() => undefined);
    throw e instanceof BerthError ? e : ioError(e, target);
  }
}

/** Places files and symlinks: hard links, or copies when links are impossible (and allowed). */
class Linker {
  copied = false;
  private copyAll = false;
  /** What a copy needs of each object copied so far: its inode's metadata and its xattrs. */
  private readonly objects = new Map<string, { st: Stats; xattrs: ReadonlyMap<string, Buffer> }>();

  constructor(
    private readonly objectsDir: string,
    private readonly target: string,
    private readonly options: CheckoutOptions,
  ) {}

  /** The first placement decides between linking and copying. */
  async first(p: Placement): Promise<void> {
    const src = objectPath(this.objectsDir, p.object);
    try {
      await link(src, p.path);
      return;
    } catch (e) {
      if (errnoCode(e) !== 'EXDEV') return this.failed(e, src, p);
    }
    if (!this.options.copy) {
      throw new BerthError('IO_ERROR', `cannot hard-link the store's files into ${this.target}: the store (${this.objectsDir}) and the checkout are on different filesystems`, {
        hint: 'check out onto the filesystem of the berth root, or use --copy to copy the files instead',
      });
    }
    this.copyAll = true;
    this.options.onCopy?.('the checkout is on a different filesystem than the store; copying files instead of hard-linking them');
    await this.copy(src, p);
  }

  async place(p: Placement): Promise<void> {
    const src = objectPath(this.objectsDir, p.object);
    if (this.copyAll) return this.copy(src, p);
    try {
      await link(src, p.path); // link(2) links a symlink itself, never its target
    } catch (e) {
      await this.failed(e, src, p);
    }
  }

  private async failed(e: unknown, src: string, p: Placement): Promise<void> {
    const code = errnoCode(e);
    if (code === 'EMLINK') {
      // The object has as many links as the filesystem allows: this entry gets its own inode.
      if (!this.copied) this.options.onCopy?.('an object reached the maximum number of hard links; copying it');
      return this.copy(src, p);
    }
    if (code === 'ENOENT' && (await lstatIfExists(src)) === undefined) throw corrupt(`object ${src}`, 'it is missing');
    throw e;
  }

  private async copy(src: string, p: Placement): Promise<void> {
    this.copied = true;
    if (p.symlink) {
      // Everything a symlink object carries is in the tree already.
      await symlink(p.symlink.target, p.path);
      await lchown(p.path, p.symlink.uid, p.symlink.gid).catch(ignoreIfUnprivileged);
      await lutimes(p.path, 0, 0);
      return;
    }
    let object = this.objects.get(src);
    if (object === undefined) {
      const st = await lstat(src).catch((e: unknown) => {
        throw errnoCode(e) === 'ENOENT' ? corrupt(`object ${src}`, 'it is missing') : e;
      });
      const xattrs = await readXattrs(src).catch((e: unknown) => {
        throw corrupt(`object ${src}`, `its xattrs are unreadable (${(e as Error).message})`);
      });
      object = { st, xattrs };
      this.objects.set(src, object);
    }
    const { st, xattrs } = object;
    await copyFile(src, p.path, constants.COPYFILE_EXCL | constants.COPYFILE_FICLONE);
    await lchown(p.path, st.uid, st.gid).catch(ignoreIfUnprivileged);
    await chmod(p.path, st.mode & 0o7777);
    // A copy has none of the object's xattrs; after chown, which would clear capabilities.
    if (xattrs.size > 0) await applyXattrs([{ path: p.path, xattrs }]);
    await utimes(p.path, 0, 0);
  }
}

function ignoreIfUnprivileged(e: unknown): void {
  // Unprivileged development runs cannot give files away; everything else still applies.
  if (errnoCode(e) === 'EPERM' && process.getuid?.() !== 0) return;
  throw e;
}

function ioError(e: unknown, target: string): unknown {
  if (e instanceof Error && 'syscall' in e) {
    return new BerthError('IO_ERROR', `cannot check out into ${target}: ${e.message}`, { hint: 'check free space and permissions', cause: e });
  }
  return e;
}
