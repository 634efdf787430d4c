/**
 * berth's content-addressed store: OCI images kept as deduplicated file
 * objects (the OSTree idea) and checked out as trees of hard links.
 *
 *   ROOT/store/objects/XX/REST   one file per distinct (content, mode, owner, xattrs); objects.ts
 *   ROOT/store/layers/ALG-HEX    what each layer contained, by diff_id; layer-record.ts
 *   ROOT/store/images/ALG-HEX    manifest + config + signatures, by manifest digest; images.ts
 *   ROOT/store/refs/NAME         reference -> manifest digest; images.ts
 *   ROOT/store/tmp/              staging (same filesystem), per process
 *
 * Commit order makes every crash safe: objects first (fsynced, then linked
 * into place), the layer record last (temp + fsync + rename + directory
 * fsync), the image record after all its layers, the reference after the
 * image. Anything half-done is either invisible staging (cleared when its
 * process is gone) or orphan objects (harmless; gc collects them).
 *
 * Modules: tar-reader.ts (untrusted tar streams; headers decoded by
 * image/tar-header.ts) -> layer-import.ts (objects + record) ; merge.ts
 * (layers -> one tree in memory) -> checkout.ts (tree -> hard links) ;
 * gc.ts ; verify.ts. Types and contracts are in types.ts.
 */
import { mkdir, rm, unlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { crashPoint } from '../crashpoint.ts';
import { syncDir } from '../durable.ts';
import { BerthError, errnoCode } from '../errors.ts';
import { parseDigest, type Digest } from '../image/digest.ts';
import { materialise } from './checkout.ts';
import { lstatIfExists, writeFileAtomic } from '../fsutil.ts';
import { clearStaleStaging, makeStaging, probeUmask, RwLock } from './fsutil.ts';
import { collectGarbage } from './gc.ts';
import {
  checkImageBytes,
  corrupt,
  digestFileName,
  encodeImageRecord,
  listImageDigests,
  listRefs,
  readImageRecord,
  readRef,
  removeRef,
  writeRef,
  type ImageRecord,
} from './images.ts';
import { DEFAULT_MAX_LAYER_BYTES, importLayerTar } from './layer-import.ts';
import { encodeLayerRecord, layerFileName, readLayerRecord } from './layer-record.ts';
import { storeDirs, type StoreDirs } from './layout.ts';
import { applyRecord, newRoot } from './merge.ts';
import type {
  CheckoutOptions,
  CheckoutResult,
  GcResult,
  ImageInput,
  ImportLayerOptions,
  ImportLayerResult,
  LayerRecord,
  StoredImage,
  VerifyOptions,
  VerifyResult,
} from './types.ts';
import { verifyStore } from './verify.ts';

/** State shared by every Store opened on the same directory in this process. */
interface Shared {
  lock: RwLock;
  /** Object fan-out directories known to exist. */
  fanout: Set<string>;
  umask: number;
}
const sharedByDir = new Map<string, Shared>();

export class Store {
  /** ROOT/store */
  readonly dir: string;
  private readonly d: StoreDirs;
  private readonly shared: Shared;

  private constructor(dir: string) {
    this.dir = dir;
    this.d = storeDirs(dir);
    const shared = sharedByDir.get(dir);
    if (!shared) throw new Error(`store ${dir} was not opened`);
    this.shared = shared;
  }

  /** Open (creating if needed) the store under `berthRoot`, and clear staging left by dead processes. */
  static async open(berthRoot: string): Promise<Store> {
    const d = storeDirs(resolve(berthRoot, 'store'));
    try {
      await mkdir(d.dir, { recursive: true, mode: 0o700 });
      for (const sub of [d.objects, d.layers, d.images, d.refs, d.tmp]) await mkdir(sub, { recursive: true, mode: 0o700 });
      await clearStaleStaging(d.tmp);
      const umask = await probeUmask(d.tmp);
      const shared = sharedByDir.get(d.dir);
      if (shared) shared.umask = umask;
      else sharedByDir.set(d.dir, { lock: new RwLock(), fanout: new Set(), umask });
    } catch (e) {
      throw new BerthError('IO_ERROR', `cannot open the image store at ${d.dir}: ${e instanceof Error ? e.message : String(e)}`, {
        hint: 'check that the berth root exists and is writable (berth runs as root)',
        cause: e,
      });
    }
    return new Store(d.dir);
  }

  /**
   * The store under `berthRoot` for reading only (images, inspect, verify
   * without repair): nothing is created or cleared, so these work as any
   * user who can read it; undefined when there is no store yet.
   */
  static async openExisting(berthRoot: string): Promise<Store | undefined> {
    const d = storeDirs(resolve(berthRoot, 'store'));
    for (const sub of [d.dir, d.objects, d.layers, d.images, d.refs]) {
      if ((await lstatIfExists(sub)) === undefined) return undefined;
    }
    if (!sharedByDir.has(d.dir)) sharedByDir.set(d.dir, { lock: new RwLock(), fanout: new Set(), umask: 0o022 });
    return new Store(d.dir);
  }

  async hasLayer(diffId: Digest): Promise<boolean> {
    return (await lstatIfExists(join(this.d.layers, layerFileName(parseDigest(diffId, 'diff_id'))))) !== undefined;
  }

  /**
   * Import an uncompressed layer tar stream. The stream may end with an error
   * (the caller verifies digests inside the stream): then nothing is
   * committed and the error is rethrown as is. The stream is always read to
   * its end. Different layers may import concurrently; the same layer twice
   * concurrently is safe (one wins). A layer already stored is not imported
   * again (its stream is still read to the end, for the caller's checks).
   */
  async importLayer(diffId: Digest, tar: Readable, options: ImportLayerOptions = {}): Promise<ImportLayerResult> {
    parseDigest(diffId, 'diff_id');
    return this.shared.lock.shared(async () => {
      const existing = await this.layerRecord(diffId);
      if (existing) {
        await drain(tar, options.maxBytes ?? DEFAULT_MAX_LAYER_BYTES);
        return { entries: existing.entries, bytes: existing.bytes, newObjects: 0, newBytes: 0 };
      }
      const staging = await makeStaging(this.d.tmp, 'import');
      try {
        const out = await importLayerTar({ objectsDir: this.d.objects, stagingDir: staging, fanout: this.shared.fanout, umask: this.shared.umask }, diffId, tar, options);
        crashPoint('store.layer-objects');
        // Last, and durable: only now does the layer exist.
        await writeFileAtomic(join(this.d.layers, layerFileName(diffId)), encodeLayerRecord(out.record), { tempDir: staging });
        return { entries: out.record.entries, bytes: out.record.bytes, newObjects: out.newObjects, newBytes: out.newBytes };
      } finally {
        await rm(staging, { recursive: true, force: true });
      }
    });
  }

  /**
   * Store an image whose layers are all present. Idempotent: the first
   * `created` stays, signatures accumulate, signedManifestBytes is replaced
   * when given.
   */
  async putImage(image: ImageInput): Promise<void> {
    const digest = parseDigest(image.manifestDigest, 'manifest digest');
    const { config } = checkImageBytes(digest, image.manifestBytes, image.configBytes);
    await this.shared.lock.shared(async () => {
      for (const diffId of config.rootfs.diff_ids) {
        if (!(await this.hasLayer(diffId))) {
          throw new BerthError('IMAGE_NOT_FOUND', `layer ${diffId} of image ${digest} is not in the store`, { hint: 'import every layer before storing the image' });
        }
      }
      const old = await readImageRecord(this.d.images, digest).catch((e: unknown) => {
        if (e instanceof BerthError && e.code === 'STORE_CORRUPT') return undefined; // replaced below
        throw e;
      });
      const signatures = [...(old?.signatures ?? [])];
      for (const s of image.signatures) if (!signatures.some((t) => t.equals(s))) signatures.push(Buffer.from(s));
      const signed = image.signedManifestBytes ?? old?.signedManifestBytes;
      const sameSigned = signed === old?.signedManifestBytes || (signed !== undefined && old?.signedManifestBytes?.equals(signed) === true);
      if (old && signatures.length === old.signatures.length && sameSigned) return;
      const staging = await makeStaging(this.d.tmp, 'image');
      try {
        const created = old?.created ?? new Date().toISOString();
        const text = encodeImageRecord({ manifestDigest: digest, manifestBytes: image.manifestBytes, configBytes: image.configBytes, signatures, signedManifestBytes: signed, created });
        await writeFileAtomic(join(this.d.images, digestFileName(digest)), text, { tempDir: staging });
      } finally {
        await rm(staging, { recursive: true, force: true });
      }
    });
  }

  async getImage(manifestDigest: Digest): Promise<StoredImage | undefined> {
    const record = await readImageRecord(this.d.images, parseDigest(manifestDigest, 'manifest digest'));
    if (!record) return undefined;
    const refs = await listRefs(this.d.refs);
    return this.stored(record, refs);
  }

  async listImages(): Promise<StoredImage[]> {
    const refs = await listRefs(this.d.refs);
    const out: StoredImage[] = [];
    for (const digest of await listImageDigests(this.d.images)) {
      const record = await readImageRecord(this.d.images, digest);
      if (record) out.push(await this.stored(record, refs));
    }
    return out;
  }

  async setReference(ref: string, digest: Digest): Promise<void> {
    const d = parseDigest(digest, 'manifest digest');
    await this.shared.lock.shared(async () => {
      const staging = await makeStaging(this.d.tmp, 'ref');
      try {
        await writeRef(this.d.refs, staging, ref, d);
      } finally {
        await rm(staging, { recursive: true, force: true });
      }
    });
  }

  async resolveReference(ref: string): Promise<Digest | undefined> {
    return readRef(this.d.refs, ref);
  }

  async removeReference(ref: string): Promise<boolean> {
    const removed = await removeRef(this.d.refs, ref);
    if (removed) await syncDir(this.d.refs);
    return removed;
  }

  /** Remove the image record and every reference to it; its layers and objects stay until gc. */
  async removeImage(digest: Digest): Promise<void> {
    const d = parseDigest(digest, 'manifest digest');
    for (const r of await listRefs(this.d.refs)) if (r.digest === d) await unlink(r.file).catch(ignoreEnoent);
    await unlink(join(this.d.images, digestFileName(d))).catch(ignoreEnoent);
    await syncDir(this.d.refs);
    await syncDir(this.d.images);
  }

  /**
   * Union of the image's layers as a read-only tree of hard links to objects
   * at `target` (must not exist; created, 0755 root:root). Whiteouts are
   * applied here, never materialised. EXDEV -> BerthError with a hint to use
   * --copy, unless options.copy (then files are copied, and onCopy says so).
   * On failure the partial target is removed.
   */
  async checkout(manifestDigest: Digest, target: string, options: CheckoutOptions = {}): Promise<CheckoutResult> {
    const digest = parseDigest(manifestDigest, 'manifest digest');
    return this.shared.lock.shared(async () => {
      const image = await readImageRecord(this.d.images, digest);
      if (!image) throw new BerthError('IMAGE_NOT_FOUND', `image ${digest} is not in the store`, { hint: 'pull it first' });
      const root = newRoot();
      for (const [i, diffId] of image.config.rootfs.diff_ids.entries()) {
        const record = await this.layerRecord(diffId);
        if (!record) throw corrupt(`layer ${diffId} of image ${digest}`, 'it is missing');
        applyRecord(root, record, `layer ${i + 1} (${diffId})`);
      }
      return materialise(root, resolve(target), this.d.objects, this.shared.umask, options);
    });
  }

  /**
   * A checkout of the image (as `checkout`) in a fresh staging directory of
   * the store, for reading it once (berth scan): `dispose` removes it. A
   * process killed before disposing leaves it as stale staging, which the
   * next Store.open clears.
   */
  async checkoutTemporary(manifestDigest: Digest, options: CheckoutOptions = {}): Promise<{ rootfs: string; dispose: () => Promise<void> }> {
    const staging = await makeStaging(this.d.tmp, 'checkout');
    const dispose = (): Promise<void> => rm(staging, { recursive: true, force: true });
    try {
      const rootfs = join(staging, 'rootfs');
      await this.checkout(manifestDigest, rootfs, options);
      return { rootfs, dispose };
    } catch (e) {
      await dispose();
      throw e;
    }
  }

  /**
   * Remove images not in `keep` and without references; then layer records
   * no kept image uses; then objects no kept layer uses. Returns what was freed.
   */
  async gc(keep: ReadonlySet<string>): Promise<GcResult> {
    return this.shared.lock.exclusive(() => collectGarbage(this.d, keep));
  }

  /**
   * Re-hash every object and check every layer/image record; with repair,
   * drop what is corrupt and what needs it, so the next pull restores them.
   */
  async verify(options: VerifyOptions = {}): Promise<VerifyResult> {
    return this.shared.lock.exclusive(() => verifyStore(this.d, options.repair === true));
  }

  private async layerRecord(diffId: Digest): Promise<LayerRecord | undefined> {
    try {
      return await readLayerRecord(this.d.layers, diffId);
    } catch (e) {
      if (errnoCode(e) !== undefined) throw e;
      throw corrupt(`layer record ${diffId}`, e instanceof Error ? e.message : String(e));
    }
  }

  private async stored(record: ImageRecord, refs: { reference: string; digest: Digest }[]): Promise<StoredImage> {
    const seen = new Set<string>();
    let size = 0;
    for (const diffId of record.config.rootfs.diff_ids) {
      const layer = await this.layerRecord(diffId);
      if (!layer) throw corrupt(`layer ${diffId} of image ${record.manifestDigest}`, 'it is missing');
      for (const e of layer.records) {
        if ((e.type === 'file' || e.type === 'hardlink') && !seen.has(e.object)) {
          seen.add(e.object);
          size += e.size;
        } else if (e.type === 'symlink' && !seen.has(e.object)) {
          seen.add(e.object);
          size += Buffer.byteLength(e.target);
        }
      }
    }
    return {
      ...record,
      references: refs.filter((r) => r.digest === record.manifestDigest).map((r) => r.reference).sort(),
      size,
    };
  }
}

/** Read a stream to its end, bounded, without keeping anything. */
async function drain(tar: Readable, maxBytes: number): Promise<void> {
  let n = 0;
  for await (const chunk of tar as AsyncIterable<Uint8Array>) {
    n += chunk.length;
    if (n > maxBytes) throw new BerthError('LAYER_INVALID', `layer is larger than the limit of ${maxBytes} bytes`, { hint: 'the image is malformed or hostile; do not use it' });
  }
}

function ignoreEnoent(e: unknown): void {
  if (errnoCode(e) !== 'ENOENT') throw e;
}
