/**
 * Importing one layer tar into the store: every regular file and symlink
 * becomes an object (files hashed and written in one pass), and every entry
 * a line of the layer record. Nothing is extracted into a tree here; paths are only
 * checked and normalised, and symlinks are never followed (they are resolved
 * at checkout, inside the merged tree).
 *
 * Every byte is hostile:
 *  - names are normalised lexically (secure-path.ts): NUL bytes, over-long
 *    names and ".." climbing above the root are refused; absolute names are
 *    made relative; the root entry itself is ignored (its metadata belongs
 *    to the checkout, which makes it 0755 root:root);
 *  - hard links must name a regular file (or hard link to one) that came
 *    earlier in the same layer, found by its normalised path;
 *  - whiteouts must name something ("", "." and ".." are refused);
 *  - link targets are bounded and NUL-free, stored verbatim;
 *  - the tar reader caps extended headers, the whole stream (maxBytes) and
 *    we cap the number of entries.
 *
 * Durability, and what is batched (the OSTree way): new objects are written
 * complete (content, owner, mode, mtime 0) into the private staging
 * directory while the tar streams by; at the end of the layer one syncfs(2)
 * makes all their data durable, then they are renamed into objects/ and a
 * second syncfs makes the new names durable; only then may the caller write
 * the layer record. One fsync per object would cost more than the whole
 * import (each is a journal commit); syncfs costs one, and is what `sync -f`
 * does. If `sync -f` is unavailable, each staged object and each touched
 * fan-out directory is fsynced instead. An object is never visible before
 * its data is durable.
 *
 * Who writes: small files and symlinks (most of a layer) are staged, and
 * every object renamed into place, by worker threads in batches
 * (object-writer.ts: one message per batch instead of five thread-pool round
 * trips per file); large files stream through fs/promises as they are
 * hashed, and the rare objects with xattrs (which need a sidecar) too.
 */
import { constants } from 'node:fs';
import { lchown, lutimes, mkdir, open, symlink, unlink, writeFile } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { syncDir, syncFile, syncfs } from '../durable.ts';
import { BerthError, errnoCode, isBerthError } from '../errors.ts';
import type { Digest } from '../image/digest.ts';
import { lstatIfExists } from '../fsutil.ts';
import { DEFAULT_MAX_EXTENDED_HEADER_BYTES, type TarHeader } from '../image/tar-header.ts';
import { forEachLimited, TaskQueue } from './fsutil.ts';
import { applyXattrs, capabilityProblem, unappliedXattrs } from './apply-xattrs.ts';
import { ObjectWriter, type StageItem } from './object-writer.ts';
import { encodeXattrs, objectHasher, objectPath, symlinkKey, XATTRS_SUFFIX } from './objects.ts';
import { MAX_LAYER_ENTRIES, MAX_PATH_BYTES, layerInvalid, normaliseEntryPath, quoteName, relJoin, unsafePath } from './secure-path.ts';
import { TarReader } from './tar-reader.ts';
import type { LayerEntry, LayerRecord, ObjectKey, ObjectMeta } from './types.ts';

const { O_CREAT, O_EXCL, O_WRONLY, O_NOFOLLOW } = constants;

export const DEFAULT_MAX_LAYER_BYTES = 64 * 1024 ** 3;
/** Objects being written while the tar streams on. */
const OBJECT_WRITES_IN_FLIGHT = 32;
/** Files up to this size are hashed before they are written (their bytes are in memory anyway). */
const SMALL_FILE_BYTES = 64 * 1024;

/** Longest name component (Linux NAME_MAX). */
const NAME_MAX = 255;
const WHITEOUT = '.wh.';
const OPAQUE = '.wh..wh..opq';
/** Reserved aufs metadata prefix (".wh..wh.plnk" etc.): never real content. */
const WHITEOUT_META = '.wh..wh.';

export interface ImportTarget {
  objectsDir: string;
  /** A private staging directory on the store's filesystem; the caller removes it. */
  stagingDir: string;
  /** Fan-out directories known to exist (shared across imports of one Store). */
  fanout: Set<string>;
  /** The process umask (fsutil.ts probeUmask), to skip a chmod when creation already gave the right mode. */
  umask: number;
}

export interface ImportOutcome {
  record: LayerRecord;
  newObjects: number;
  newBytes: number;
}

/**
 * Read the whole tar stream (to its very end, so the caller's digest checks
 * run) and store its objects. Returns the record to commit; commits nothing
 * visible except objects, which are harmless without a record. An error of
 * the stream itself is rethrown as is.
 */
export async function importLayerTar(
  target: ImportTarget,
  diffId: Digest,
  tar: Readable | AsyncIterable<unknown>,
  options: { onSkip?: (path: string, why: string) => void; maxBytes?: number } = {},
): Promise<ImportOutcome> {
  const reader = new TarReader(tar, {
    maxBytes: options.maxBytes ?? DEFAULT_MAX_LAYER_BYTES,
    maxExtendedHeaderBytes: DEFAULT_MAX_EXTENDED_HEADER_BYTES,
  });
  const importer = new Importer(target, options.onSkip);
  let name: string | undefined;
  try {
    for (let h = await reader.next(); h !== null; h = await reader.next()) {
      name = h.name;
      await importer.add(h, reader);
    }
    name = undefined;
    await reader.drain();
    await importer.finish();
  } catch (e) {
    await reader.close();
    await importer.abandon();
    if (reader.upstreamError) throw reader.upstreamError.error;
    throw classify(e, name, target.objectsDir);
  }
  return {
    record: { diffId, entries: importer.entries, bytes: importer.bytes, records: importer.records },
    newObjects: importer.newObjects,
    newBytes: importer.newBytes,
  };
}

function classify(e: unknown, name: string | undefined, where: string): unknown {
  if (isBerthError(e)) return e;
  if (e instanceof Error && 'syscall' in e) {
    const what = name === undefined ? 'layer' : `layer entry ${quoteName(name)}`;
    return new BerthError('IO_ERROR', `cannot store ${what}: ${e.message}`, { hint: `check free space and permissions under ${join(where, '..')}`, cause: e });
  }
  return layerInvalid(`layer cannot be read: ${e instanceof Error ? e.message : String(e)}`, e);
}

class Importer {
  entries = 0;
  bytes = 0;
  newObjects = 0;
  newBytes = 0;
  readonly records: LayerEntry[] = [];
  /** Regular files of this layer by normalised path, for hard links. */
  private readonly files = new Map<string, { object: ObjectKey; size: number }>();
  /** Objects this import has already handled (committed or found). */
  private readonly seen = new Set<string>();
  /** New objects staged through fs/promises (temp names, maybe a sidecar), moved into place by finish(). */
  private readonly stagedObjects: { tmp: string; key: ObjectKey; xattrs?: ReadonlyMap<string, Buffer>; symlink: boolean }[] = [];
  /** New objects the writer staged at staging/XX/REST, moved into place by finish(). */
  private readonly writerObjects: { key: ObjectKey; symlink: boolean }[] = [];
  private readonly queue = new TaskQueue(OBJECT_WRITES_IN_FLIGHT);
  /** Small files and symlinks (without xattrs): staged by worker threads, in batches (object-writer.ts). */
  private readonly writer: ObjectWriter;
  private seq = 0;
  /** Files we create are root's already; chown only what belongs to someone else. */
  private readonly root0 = process.getuid?.() === 0 && process.getgid?.() === 0;

  constructor(
    private readonly target: ImportTarget,
    private readonly onSkip: ((path: string, why: string) => void) | undefined,
  ) {
    this.writer = new ObjectWriter({ staging: target.stagingDir, objects: target.objectsDir }, (item) => this.staged(item));
  }

  async add(h: TarHeader, reader: TarReader): Promise<void> {
    if (++this.entries > MAX_LAYER_ENTRIES) throw layerInvalid(`layer has more than ${MAX_LAYER_ENTRIES} entries`);
    const rel = normaliseEntryPath(h.name);
    if (rel === '') {
      if (h.type !== 'dir') throw unsafePath(h.name, 'it names the root directory itself');
      return; // the checkout root's metadata is fixed
    }
    // No filesystem takes a longer name; refuse here rather than fail every checkout.
    if (rel.length > NAME_MAX / 3 && rel.split('/').some((c) => Buffer.byteLength(c) > NAME_MAX)) {
      throw layerInvalid(`layer entry ${quoteName(h.name)} has a name component longer than ${NAME_MAX} bytes`);
    }
    const slash = rel.lastIndexOf('/');
    const parent = slash < 0 ? '' : rel.slice(0, slash);
    const base = rel.slice(slash + 1);

    if (base.startsWith(WHITEOUT)) return this.whiteout(h, rel, parent, base);

    const { mode, uid, gid, mtime } = h;
    if (h.xattrs.size > 0) this.checkXattrs(h, rel);
    switch (h.type) {
      case 'file':
        return this.file(h, rel, reader);
      case 'dir':
        this.files.delete(rel);
        this.records.push({ type: 'dir', path: rel, mode, uid, gid, mtime });
        return;
      case 'symlink': {
        this.files.delete(rel);
        const target = linkTarget(h);
        const object = symlinkKey({ uid, gid, xattrs: h.xattrs }, target);
        this.records.push({ type: 'symlink', path: rel, target, uid, gid, mtime, object });
        if (this.seen.has(object)) return;
        this.seen.add(object);
        if (h.xattrs.size === 0) {
          const size = Buffer.byteLength(target);
          await this.writer.add({ key: object, symlink: target, size, created: 0o777, mode: 0o777, uid, gid, chown: !this.root0 || uid !== 0 || gid !== 0, chmod: false });
          return;
        }
        await this.queue.add(() => this.stageSymlink(object, target, { mode: 0o777, uid, gid, xattrs: h.xattrs }));
        return;
      }
      case 'hardlink': {
        const linkname = linkTarget(h);
        const targetRel = normaliseEntryPath(linkname, `${h.name} -> ${linkname}`);
        const file = this.files.get(targetRel);
        if (file === undefined) {
          throw layerInvalid(`hard link ${quoteName(h.name)} points at ${quoteName(linkname)}, which is not a regular file earlier in this layer`);
        }
        this.files.set(rel, file);
        this.records.push({ type: 'hardlink', path: rel, target: targetRel, object: file.object, size: file.size });
        return;
      }
      case 'char':
      case 'block':
      case 'fifo':
        this.files.delete(rel);
        this.records.push({ type: h.type, path: rel, mode, uid, gid, mtime, devmajor: h.devmajor, devminor: h.devminor });
        this.onSkip?.(rel, `${h.type} entries are recorded but not created at checkout (containers get /dev from a tmpfs)`);
        return;
    }
  }

  /** Wait for staged objects, make them durable, move them into place, make that durable. */
  async finish(): Promise<void> {
    try {
      await this.queue.settle();
      await this.writer.settle();
      await this.commit();
    } finally {
      this.writer.close();
    }
  }

  private async commit(): Promise<void> {
    if (this.stagedObjects.length === 0 && this.writerObjects.length === 0) return;
    // After chown (which clears file capabilities), before the data is synced.
    await applyXattrs(this.stagedObjects.flatMap((o) => (o.xattrs && !o.symlink ? [{ path: o.tmp, xattrs: o.xattrs }] : [])));
    const synced = await syncfs(this.target.stagingDir);
    if (!synced) {
      const staged = [...this.stagedObjects, ...this.writerObjects.map((o) => ({ ...o, tmp: objectPath(this.target.stagingDir, o.key), xattrs: undefined }))];
      await forEachLimited(staged, 16, async (o) => {
        // A symlink's target lives in its inode, committed with the directory below.
        if (!o.symlink) await syncFile(o.tmp);
        if (o.xattrs) await syncFile(`${o.tmp}${XATTRS_SUFFIX}`);
      });
      await syncDir(this.target.stagingDir);
    }
    const dirty = new Set<string>();
    for (const o of this.stagedObjects) dirty.add(join(this.target.objectsDir, o.key.slice(0, 2)));
    for (const o of this.writerObjects) dirty.add(join(this.target.objectsDir, o.key.slice(0, 2)));
    await forEachLimited(
      [...dirty].filter((d) => !this.target.fanout.has(d)),
      32,
      async (fanout) => {
        await mkdir(fanout, { recursive: true, mode: 0o700 });
        this.target.fanout.add(fanout);
      },
    );
    // Sidecars first: a visible object always has its xattrs. A concurrent
    // import may have placed the same object meanwhile; replacing it with an
    // identical one is harmless.
    const sidecars = this.stagedObjects.filter((o) => o.xattrs).map((o) => [`${o.tmp}${XATTRS_SUFFIX}`, `${objectPath(this.target.objectsDir, o.key)}${XATTRS_SUFFIX}`] as const);
    if (sidecars.length > 0) await this.writer.rename(sidecars);
    await this.writer.rename(this.stagedObjects.map((o) => [o.tmp, objectPath(this.target.objectsDir, o.key)] as const));
    await this.writer.commit(this.writerObjects.map((o) => o.key));
    if (!(await syncfs(this.target.objectsDir))) await forEachLimited([...dirty], 16, (d) => syncDir(d));
  }

  /** After a failure: let in-flight commits end (their errors no longer matter). */
  async abandon(): Promise<void> {
    await this.queue.settle().catch(() => undefined);
    await this.writer.abandon();
  }

  /** Refuse a malformed file capability; say which xattrs stay in the store only (apply-xattrs.ts sets the rest on the object's inode). */
  private checkXattrs(h: TarHeader, rel: string): void {
    if (h.type === 'symlink') {
      this.onSkip?.(rel, `its extended attributes (${[...h.xattrs.keys()].join(', ')}) are kept in the store but not set: Linux allows no user xattrs on symlinks`);
      return;
    }
    if (h.type === 'dir') {
      this.onSkip?.(rel, 'extended attributes of directories are not kept (only files carry them, as objects)');
      return;
    }
    if (h.type !== 'file') return;
    const cap = h.xattrs.get('security.capability');
    const problem = cap && capabilityProblem(cap);
    if (problem) throw layerInvalid(`layer entry ${quoteName(h.name)} has an invalid file capability (security.capability): ${problem}`);
    const unapplied = unappliedXattrs(h.xattrs);
    if (unapplied.length > 0) this.onSkip?.(rel, `extended attributes ${unapplied.join(', ')} are kept in the store but not set on the file (berth sets user.* and security.capability)`);
  }

  /** An object the writer staged (it was not in the store). */
  private staged(item: StageItem): void {
    this.writerObjects.push({ key: item.key as ObjectKey, symlink: item.symlink !== undefined });
    this.newObjects++;
    this.newBytes += item.size;
  }

  private whiteout(h: TarHeader, rel: string, parent: string, base: string): void {
    if (base === OPAQUE) {
      this.records.push({ type: 'opaque', path: parent });
      return;
    }
    if (base.startsWith(WHITEOUT_META)) {
      this.onSkip?.(rel, 'reserved whiteout metadata entry');
      return;
    }
    const hidden = base.slice(WHITEOUT.length);
    if (hidden === '' || hidden === '.' || hidden === '..') throw unsafePath(h.name, 'the whiteout does not name a file');
    this.records.push({ type: 'whiteout', path: relJoin(parent, hidden) });
  }

  private async file(h: TarHeader, rel: string, reader: TarReader): Promise<void> {
    const meta: ObjectMeta = { mode: h.mode, uid: h.uid, gid: h.gid, xattrs: h.xattrs };
    const hash = objectHasher(meta);
    let object: ObjectKey;
    if (h.size <= SMALL_FILE_BYTES) {
      // Small files: their bytes are already in memory (slices of the stream's
      // chunks), so hash first and write only what the store does not have.
      const chunks: Buffer[] = [];
      for await (const chunk of reader.data()) {
        hash.update(chunk);
        chunks.push(chunk);
      }
      object = this.record(h, rel, hash.digest('hex') as ObjectKey);
      if (this.seen.has(object)) return;
      this.seen.add(object);
      if (meta.xattrs.size === 0) {
        const created = h.mode & 0o777;
        await this.writer.add({
          key: object,
          chunks,
          size: h.size,
          created,
          mode: meta.mode,
          uid: meta.uid,
          gid: meta.gid,
          chown: !this.root0 || meta.uid !== 0 || meta.gid !== 0,
          chmod: meta.mode !== created || (created & this.target.umask) !== 0,
        });
        return;
      }
      await this.queue.add(async () => {
        if (await this.stored(object, h.size)) return;
        const tmp = join(this.target.stagingDir, `o${this.seq++}`);
        const fh = await open(tmp, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW, h.mode & 0o777);
        try {
          for (const c of chunks) await writeAll(fh, c);
        } catch (e) {
          await fh.close().catch(() => undefined);
          throw e;
        }
        await this.stage(fh, tmp, object, meta, h.size, h.mode & 0o777);
      });
      return;
    }
    // Large files: one pass, hashing and writing each chunk; awaiting the
    // write is the backpressure.
    const tmp = join(this.target.stagingDir, `o${this.seq++}`);
    const fh = await open(tmp, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW, 0o600);
    try {
      for await (const chunk of reader.data()) {
        hash.update(chunk);
        await writeAll(fh, chunk);
      }
    } catch (e) {
      await fh.close().catch(() => undefined);
      throw e;
    }
    object = this.record(h, rel, hash.digest('hex') as ObjectKey);
    if (this.seen.has(object) || (await this.stored(object, h.size))) {
      await fh.close();
      await unlink(tmp);
      return;
    }
    this.seen.add(object);
    await this.queue.add(() => this.stage(fh, tmp, object, meta, h.size, 0o600));
  }

  private record(h: TarHeader, rel: string, object: ObjectKey): ObjectKey {
    this.bytes += h.size;
    this.files.set(rel, { object, size: h.size });
    this.records.push({ type: 'file', path: rel, mode: h.mode, uid: h.uid, gid: h.gid, mtime: h.mtime, object, size: h.size });
    return object;
  }

  /** Whether the store already has this object (same key, kind and size; content is verify's business). */
  private async stored(object: ObjectKey, size: number, kind: 'file' | 'symlink' = 'file'): Promise<boolean> {
    const existing = await lstatIfExists(objectPath(this.target.objectsDir, object));
    if (existing === undefined || existing.size !== size) return false;
    return kind === 'file' ? existing.isFile() : existing.isSymbolicLink();
  }

  /**
   * Give the temp file the object's metadata and queue it for finish().
   * `created` is the mode it was created with (before the umask). Closes `fh`.
   */
  private async stage(fh: FileHandle, tmp: string, key: ObjectKey, meta: ObjectMeta, size: number, created: number): Promise<void> {
    try {
      // chown before chmod: chown clears setuid/setgid. New files are already root's.
      const chown = !this.root0 || meta.uid !== 0 || meta.gid !== 0;
      if (chown) await fh.chown(meta.uid, meta.gid).catch(ignoreIfUnprivileged);
      if (meta.mode !== created || (created & this.target.umask) !== 0) await fh.chmod(meta.mode);
      await fh.utimes(0, 0);
    } catch (e) {
      await fh.close().catch(() => undefined);
      throw e;
    }
    await fh.close();
    if (meta.xattrs.size > 0) await writeFile(`${tmp}${XATTRS_SUFFIX}`, encodeXattrs(meta.xattrs), { mode: 0o600, flag: 'wx' });
    this.stagedObjects.push({ tmp, key, ...(meta.xattrs.size > 0 && { xattrs: meta.xattrs }), symlink: false });
    this.newObjects++;
    this.newBytes += size;
  }

  /** Create the symlink object `key` in staging unless the store has it. */
  private async stageSymlink(key: ObjectKey, target: string, meta: ObjectMeta): Promise<void> {
    const size = Buffer.byteLength(target);
    if (await this.stored(key, size, 'symlink')) return;
    const tmp = join(this.target.stagingDir, `o${this.seq++}`);
    await symlink(target, tmp); // never followed: lchown, lutimes and rename act on the link itself
    if (!this.root0 || meta.uid !== 0 || meta.gid !== 0) await lchown(tmp, meta.uid, meta.gid).catch(ignoreIfUnprivileged);
    await lutimes(tmp, 0, 0);
    if (meta.xattrs.size > 0) await writeFile(`${tmp}${XATTRS_SUFFIX}`, encodeXattrs(meta.xattrs), { mode: 0o600, flag: 'wx' });
    this.stagedObjects.push({ tmp, key, ...(meta.xattrs.size > 0 && { xattrs: meta.xattrs }), symlink: true });
    this.newObjects++;
    this.newBytes += size;
  }
}

function ignoreIfUnprivileged(e: unknown): void {
  // Unprivileged development runs cannot give files away; such objects will not verify.
  if (errnoCode(e) === 'EPERM' && process.getuid?.() !== 0) return;
  throw e;
}

function linkTarget(h: TarHeader): string {
  const target = h.linkname;
  if (target === '') throw layerInvalid(`link ${quoteName(h.name)} has an empty target`);
  if (Buffer.byteLength(target) > MAX_PATH_BYTES) throw layerInvalid(`link ${quoteName(h.name)} has a target longer than ${MAX_PATH_BYTES} bytes`);
  if (target.includes('\0')) throw unsafePath(h.name, 'its link target contains a NUL byte');
  return target;
}

async function writeAll(fh: FileHandle, chunk: Uint8Array): Promise<void> {
  for (let off = 0; off < chunk.length; ) {
    const { bytesWritten } = await fh.write(chunk, off, chunk.length - off);
    off += bytesWritten;
  }
}
