/**
 * Applies one uncompressed OCI/Docker layer tar onto a root directory.
 *
 * Every byte of the tar is treated as hostile. The rules, and why:
 *  - Entry names are normalised lexically (secure-path.ts); a ".." that climbs
 *    above the root or a NUL byte is UNSAFE_PATH. Absolute names are made
 *    relative to the root.
 *  - Parent directories are resolved on disk with symlinks re-rooted at the
 *    root, so a symlink planted by this or an earlier layer cannot redirect a
 *    write outside it. The final component is never followed: whatever is
 *    there is removed first and files are created O_EXCL|O_NOFOLLOW.
 *  - The root entry ("./") is ignored: the root belongs to the caller, and a
 *    layer must not be able to change its owner or make it world-writable.
 *  - Device nodes and fifos are skipped (Node cannot mknod; containers get
 *    /dev from a tmpfs); `onSkip` is told. An existing entry at that path is
 *    left alone.
 *  - Hard links share the target's inode, so their header's metadata is not
 *    applied (it would rewrite the target's owner/mode).
 *  - Directory mode and mtime are applied at the end of the layer, deepest
 *    first: writing children changes a directory's mtime, and a read-only
 *    directory mode would stop an unprivileged writer from filling it.
 *  - Whiteouts follow image-spec layer.md and only remove what lower layers
 *    left: paths written by this layer are tracked and survive.
 *
 * The tree is assumed private to berth while a layer is applied (nothing else
 * writes to it), which is what makes lstat-then-act free of races.
 */
import { constants } from 'node:fs';
import { lchown, link, lstat, lutimes, mkdir, open, readdir, rm, symlink, unlink } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { extract } from 'tar-stream';
import type { Header } from 'tar-stream';
import { BerthError, errnoCode, isBerthError } from '../errors.ts';
import {
  MAX_PATH_BYTES,
  layerInvalid,
  normaliseEntryPath,
  quoteName,
  relJoin,
  resolveDirIn,
  unsafePath,
} from './secure-path.ts';

export interface ApplyLayerOptions {
  /** Called for entries that are skipped on purpose (device nodes, fifos) so callers can log. */
  onSkip?: (path: string, reason: string) => void;
}

export interface ApplyLayerResult {
  entries: number;
  bytes: number;
}

/** Most entries accepted in one layer; bounds memory spent on bookkeeping. */
export const MAX_LAYER_ENTRIES = 1_000_000;

const WHITEOUT = '.wh.';
const OPAQUE = '.wh..wh..opq';
/** Reserved aufs metadata prefix (".wh..wh.plnk" etc.): never real content. */
const WHITEOUT_META = '.wh..wh.';

const { O_CREAT, O_EXCL, O_WRONLY, O_NOFOLLOW, O_RDONLY, O_DIRECTORY } = constants;

/**
 * Apply one uncompressed OCI/Docker layer tar stream onto the directory `root`
 * (which exists and is owned by us). Layers are applied in order by repeated
 * calls on the same root. On failure the input stream is destroyed and the
 * root is left partially written; callers discard it.
 */
export async function applyLayer(
  root: string,
  tar: NodeJS.ReadableStream | Readable,
  options: ApplyLayerOptions = {},
): Promise<ApplyLayerResult> {
  const writer = new LayerWriter(resolve(root), options);
  const ex = extract();
  // An upstream error (e.g. a digest mismatch) wins over whatever it causes downstream.
  let upstream: { error: unknown } | undefined;
  tar.on('error', (error: unknown) => {
    upstream ??= { error };
    ex.destroy(error instanceof Error ? error : new Error(String(error)));
  });
  // A hand-written pipe: `extract()` is a streamx Writable, which Node's pipe() is not typed for.
  const onData = (chunk: unknown): void => {
    if (!ex.write(chunk)) tar.pause();
  };
  ex.on('drain', () => tar.resume());
  tar.on('data', onData);
  tar.once('end', () => ex.end(undefined));

  const classify = (e: unknown, name?: string): unknown => {
    if (upstream) return upstream.error;
    if (isBerthError(e)) return e;
    const message = e instanceof Error ? e.message : String(e);
    if (e instanceof Error && 'syscall' in e) {
      const what = name === undefined ? 'layer' : `layer entry ${quoteName(name)}`;
      return new BerthError('IO_ERROR', `cannot write ${what}: ${message}`, {
        hint: `check free space and permissions under ${root}`,
        cause: e,
      });
    }
    // Anything else comes from the tar parser (bad header, truncated data).
    return layerInvalid(`layer is not a valid tar archive: ${message}`, e);
  };

  try {
    for await (const entry of ex) {
      try {
        await writer.apply(entry);
      } catch (e) {
        throw classify(e, entry.header.name);
      }
    }
    await writer.finish().catch((e: unknown) => {
      throw classify(e);
    });
  } catch (e) {
    // Stop reading (and release whatever feeds us), as pipeline() would.
    tar.removeListener('data', onData);
    if ('destroy' in tar) tar.destroy();
    throw classify(e);
  }
  if (upstream) throw upstream.error;
  return { entries: writer.entries, bytes: writer.bytes };
}

interface DirMeta {
  mode: number;
  mtime: Date | undefined;
}

/** One entry as tar-stream's extract() yields it: its header and its data. */
interface Entry extends AsyncIterable<unknown> {
  header: Header;
}

class LayerWriter {
  entries = 0;
  bytes = 0;
  /** Resolved paths written by this layer, plus all their ancestors (for whiteouts). */
  private readonly touched = new Set<string>();
  /** Directory metadata applied at the end, keyed by resolved path. */
  private readonly dirs = new Map<string, DirMeta>();
  // Unprivileged runs (unit tests) cannot chown; everything else still applies.
  private readonly privileged = process.getuid?.() === 0;

  constructor(
    private readonly root: string,
    private readonly options: ApplyLayerOptions,
  ) {}

  async apply(entry: Entry): Promise<void> {
    const h = entry.header;
    // Unknown typeflags reach us as null, whatever the declared type says.
    const type: Header['type'] | null = h.type;
    if (++this.entries > MAX_LAYER_ENTRIES) throw layerInvalid(`layer has more than ${MAX_LAYER_ENTRIES} entries`);
    const rel = normaliseEntryPath(h.name);
    const [parent, base] = splitRel(rel);

    if (rel === '') {
      if (type !== 'directory') throw unsafePath(h.name, 'it names the root directory itself');
      return; // see the module comment: the root is the caller's
    }
    if (base.startsWith(WHITEOUT)) {
      await drain(entry);
      return this.whiteout(h.name, rel, parent, base);
    }

    switch (type) {
      case 'file':
      case 'contiguous-file':
        return this.file(entry, rel);
      case 'directory':
        return this.directory(h, rel);
      case 'symlink':
        await drain(entry);
        return this.symlink(h, rel);
      case 'link':
        await drain(entry);
        return this.hardlink(h, rel);
      case 'character-device':
      case 'block-device':
      case 'fifo':
        await drain(entry);
        this.options.onSkip?.(rel, `${type} entries are not created (containers get /dev from a tmpfs)`);
        return;
      default:
        throw layerInvalid(`layer entry ${quoteName(h.name)} has an unsupported type (${type ?? 'unknown'})`);
    }
  }

  /** Apply deferred directory metadata, deepest first. */
  async finish(): Promise<void> {
    const depth = (p: string): number => p.split('/').length;
    const order = [...this.dirs.entries()].sort((a, b) => depth(b[0]) - depth(a[0]));
    for (const [real, meta] of order) {
      // A later entry may have replaced a parent with a symlink: re-resolve and
      // skip unless the path still leads to the very directory we recorded.
      const [parent] = splitRel(real);
      if ((await resolveDirIn(this.root, parent, false, real)) !== parent) continue;
      let fh: FileHandle;
      try {
        fh = await open(join(this.root, real), O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
      } catch (e) {
        if (['ENOENT', 'ENOTDIR', 'ELOOP'].includes(errnoCode(e) ?? '')) continue; // replaced later in the layer
        throw e;
      }
      try {
        await fh.chmod(meta.mode);
        if (meta.mtime) await fh.utimes(meta.mtime, meta.mtime);
      } finally {
        await fh.close();
      }
    }
  }

  private async file(entry: Entry, rel: string): Promise<void> {
    const h = entry.header;
    const { abs, real } = await this.locate(rel, h.name);
    await clear(abs, false);
    const fh = await open(abs, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW, 0o600);
    try {
      // Awaiting each write is the backpressure: the parser is not read further meanwhile.
      for await (const chunk of entry) {
        if (!(chunk instanceof Uint8Array)) throw new TypeError('tar entry data is not bytes');
        await writeAll(fh, chunk);
        this.bytes += chunk.length;
      }
      // Through the descriptor, so no path is re-resolved. chown before chmod:
      // chown clears setuid/setgid.
      const { uid, gid, mode, mtime } = metadata(h, 0o644);
      if (this.privileged) await fh.chown(uid, gid);
      await fh.chmod(mode);
      if (mtime) await fh.utimes(mtime, mtime);
    } finally {
      await fh.close();
    }
    this.mark(real);
  }

  private async directory(h: Header, rel: string): Promise<void> {
    const { abs, real } = await this.locate(rel, h.name);
    if (!(await clear(abs, true))) await mkdir(abs, { mode: 0o700 }); // final mode set in finish()
    const { uid, gid, mode, mtime } = metadata(h, 0o755);
    if (this.privileged) await lchown(abs, uid, gid);
    this.dirs.set(real, { mode, mtime });
    this.mark(real);
  }

  private async symlink(h: Header, rel: string): Promise<void> {
    const target = linkTarget(h);
    const { abs, real } = await this.locate(rel, h.name);
    await clear(abs, false);
    await symlink(target, abs); // stored as-is; never followed while writing
    const { uid, gid, mtime } = metadata(h, 0o777);
    if (this.privileged) await lchown(abs, uid, gid);
    if (mtime) await lutimes(abs, mtime, mtime);
    this.mark(real);
  }

  private async hardlink(h: Header, rel: string): Promise<void> {
    const linkname = linkTarget(h);
    const targetRel = normaliseEntryPath(linkname, `${h.name} -> ${linkname}`);
    if (targetRel === '') throw layerInvalid(`hard link ${quoteName(h.name)} points at the root directory`);
    const { abs, real } = await this.locate(rel, h.name);
    const [tDir, tBase] = splitRel(targetRel);
    const tParent = await resolveDirIn(this.root, tDir, false, linkname);
    const tReal = tParent === null ? null : relJoin(tParent, tBase);
    const st = tReal === null ? null : await lstatOrNull(join(this.root, tReal));
    if (tReal === null || st === null) {
      throw layerInvalid(`hard link ${quoteName(h.name)} points at ${quoteName(linkname)}, which does not exist`);
    }
    if (st.isDirectory()) throw layerInvalid(`hard link ${quoteName(h.name)} points at a directory`);
    if (tReal === real) return this.mark(real); // a link to itself: nothing to do
    await clear(abs, false);
    // link(2) does not follow a symlink at the target on Linux: it links the symlink itself.
    await link(join(this.root, tReal), abs);
    this.mark(real);
  }

  private async whiteout(name: string, rel: string, parent: string, base: string): Promise<void> {
    if (base === OPAQUE) {
      const dir = await resolveDirIn(this.root, parent, false, name);
      if (dir === null) return; // nothing below to hide
      for (const child of await readdir(join(this.root, dir))) await this.prune(relJoin(dir, child));
      return;
    }
    if (base.startsWith(WHITEOUT_META)) {
      this.options.onSkip?.(rel, 'reserved whiteout metadata entry');
      return;
    }
    const hidden = base.slice(WHITEOUT.length);
    if (hidden === '' || hidden === '.' || hidden === '..') throw unsafePath(name, 'the whiteout does not name a file');
    const dir = await resolveDirIn(this.root, parent, false, name);
    if (dir !== null) await this.prune(relJoin(dir, hidden));
  }

  /** Remove `real` and everything under it that this layer did not write. */
  private async prune(real: string): Promise<void> {
    const abs = join(this.root, real);
    // rm never follows symlinks, neither at `abs` nor below it.
    if (!this.touched.has(real)) return rm(abs, { recursive: true, force: true });
    const st = await lstatOrNull(abs);
    if (!st?.isDirectory()) return; // written by this layer: it stays
    for (const child of await readdir(abs)) await this.prune(relJoin(real, child));
  }

  /** Resolve the entry's parent securely (creating missing directories). */
  private async locate(rel: string, name: string): Promise<{ abs: string; real: string }> {
    const [dir, base] = splitRel(rel);
    const parent = (await resolveDirIn(this.root, dir, true, name))!;
    const real = relJoin(parent, base);
    return { abs: join(this.root, real), real };
  }

  private mark(real: string): void {
    // Ancestors are always added with a path, so stop at the first one already known.
    for (let p = real; p !== '' && !this.touched.has(p); p = splitRel(p)[0]) this.touched.add(p);
  }
}

/**
 * Make room for a new entry at `abs` without following it. Returns true when
 * an existing directory was kept (only for `keepDir`, i.e. a directory entry).
 */
async function clear(abs: string, keepDir: boolean): Promise<boolean> {
  const st = await lstatOrNull(abs);
  if (st === null) return false;
  if (st.isDirectory()) {
    if (keepDir) return true;
    await rm(abs, { recursive: true, force: true });
  } else {
    await unlink(abs);
  }
  return false;
}

async function lstatOrNull(p: string): Promise<Awaited<ReturnType<typeof lstat>> | null> {
  try {
    return await lstat(p);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT' || errnoCode(e) === 'ENOTDIR') return null;
    throw e;
  }
}

async function writeAll(fh: FileHandle, chunk: Uint8Array): Promise<void> {
  for (let off = 0; off < chunk.length; ) {
    const { bytesWritten } = await fh.write(chunk, off, chunk.length - off);
    off += bytesWritten;
  }
}

/** Consume an entry's data so the parser can move on. */
async function drain(entry: Entry): Promise<void> {
  // tar-stream never feeds a directory's stream, so reading it would hang.
  if (entry.header.type === 'directory') return;
  for await (const _chunk of entry) {
    // discarded
  }
}

/** "a/b/c" -> ["a/b", "c"]; "c" -> ["", "c"]. */
function splitRel(rel: string): [string, string] {
  const i = rel.lastIndexOf('/');
  return i < 0 ? ['', rel] : [rel.slice(0, i), rel.slice(i + 1)];
}

function linkTarget(h: Header): string {
  const target = h.linkname ?? '';
  if (target === '') throw layerInvalid(`link ${quoteName(h.name)} has an empty target`);
  if (Buffer.byteLength(target) > MAX_PATH_BYTES) {
    throw layerInvalid(`link ${quoteName(h.name)} has a target longer than ${MAX_PATH_BYTES} bytes`);
  }
  if (target.includes('\0')) throw unsafePath(h.name, 'its link target contains a NUL byte');
  return target;
}

/** Owner, permission bits and mtime; pax records override the ustar fields (larger ids, sub-second times). */
function metadata(h: Header, defaultMode: number): { uid: number; gid: number; mode: number; mtime: Date | undefined } {
  const pax = typeof h.pax === 'object' && h.pax !== null ? (h.pax as Record<string, unknown>) : {};
  const id = (paxValue: unknown, field: number | undefined, what: string): number => {
    const v = typeof paxValue === 'string' && /^\d{1,10}$/.test(paxValue) ? Number(paxValue) : (field ?? 0);
    if (!Number.isSafeInteger(v) || v < 0 || v > 0xfffffffe) {
      throw layerInvalid(`layer entry ${quoteName(h.name)} has an invalid ${what}`);
    }
    return v;
  };
  let mtime = h.mtime;
  if (typeof pax.mtime === 'string' && /^-?\d{1,15}(\.\d+)?$/.test(pax.mtime)) mtime = new Date(Number(pax.mtime) * 1000);
  return {
    uid: id(pax.uid, h.uid, 'uid'),
    gid: id(pax.gid, h.gid, 'gid'),
    // Keep setuid/setgid/sticky; drop file-type bits some writers put in the mode field.
    mode: (h.mode ?? defaultMode) & 0o7777,
    mtime: mtime !== undefined && Number.isFinite(mtime.getTime()) ? mtime : undefined,
  };
}
