/**
 * Offline bundles: `berth save` writes stored images, with their signatures,
 * into one tar that is an OCI image layout (so oci-archive: readers such as
 * skopeo and umoci take it); `berth load` imports such a tar under the trust
 * policy, every digest verified, with no registry needed. Format: docs/packaging.md.
 *
 * The store keeps files, not layer tarballs, and a tar rebuilt from layer
 * records is not byte-identical to the original (header formats, PAX
 * records, uname/gname, padding, the dropped root entry), so neither its
 * diff_id nor the compressed layer digest the signed manifest names could be
 * verified. save therefore streams the original layer blobs from the image's
 * source (registry or local medium), each checked against the manifest's
 * digest on the way into the bundle; manifest, config and signatures come
 * from the store.
 */
import { createWriteStream } from 'node:fs';
import { rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tarStream from 'tar-stream';
import { crashPoint } from '../crashpoint.ts';
import { syncDir, syncFile } from '../durable.ts';
import { BerthError, errnoCode } from '../errors.ts';
import { ifExists, readdirIfExists, statIfExists } from '../fsutil.ts';
import { removeOnInterrupt } from '../interrupt.ts';
import { digestOf, encodedOf, verifiedStream, type Digest } from '../image/digest.ts';
import { MAX_MANIFEST_BYTES, MediaType, parseManifest, type Descriptor } from '../image/manifest.ts';
import { dockerName, type DockerReference } from '../image/reference.ts';
import type { UntrustedSigstoreSignature } from '../image/sigstore.ts';
import { formatReference, parseImageReference } from '../transport/index.ts';
import type { OciArchiveReference } from '../transport/oci-archive/reference.ts';
import { resolveImage } from '../transport/resolve.ts';
import { Store } from '../store/store.ts';
import type { StoredImage } from '../store/types.ts';
import { decodeSigstoreList, encodeSigstoreList } from '../store/images.ts';
import { OciArchiveImageSource } from '../transport/oci-archive/oci_archive_src.ts';
import { TarIndex } from '../transport/tarfile/tar_index.ts';
import { openImageSource } from '../transport/index.ts';
import { checkTrust } from '../trust/index.ts';
import { keptSigstoreSource } from '../trust/sigstore-source.ts';
import type { OpContext } from './context.ts';
import { storeImages, type TrustedImage } from './layer-pipeline.ts';
import { locked } from './locked.ts';
import { obtainImage } from './obtain.ts';
import type { PullOptions } from './pull.ts';
import { requireRoot } from './require-root.ts';

export const REF_NAME = 'org.opencontainers.image.ref.name';
/** Where a bundle keeps what OCI layouts have no place for. */
export const SIGNATURES_DIR = 'berth/signatures';
/** Signatures per image berth writes or reads (look-aside stores have no limit; a bundle needs one). */
const MAX_SIGNATURES = 64;
const MAX_SIGNATURE_BYTES = 4 * 1024 * 1024;

/** berth/signatures/HEX/sigstore.json: the image's sigstore signatures, a JSON list (store/images.ts encodeSigstoreList). */
const SIGSTORE_FILE = 'sigstore.json';
const MAX_SIGSTORE_FILE_BYTES = 16 * 1024 * 1024;

export interface SavedImage {
  reference: string;
  digest: Digest;
  layers: number;
  signatures: number;
  sigstoreSignatures: number;
}

export interface SaveResult {
  file: string;
  images: SavedImage[];
  /** Distinct blobs written (manifests, configs, layers). */
  blobs: number;
  bytes: number;
}

interface Entry {
  ref: DockerReference;
  image: StoredImage;
}

/** `berth save IMAGE... -o FILE`. Images missing from the store are pulled first (under the lock). */
export async function save(ctx: OpContext, images: readonly string[], output: string, options: PullOptions): Promise<SaveResult> {
  requireRoot('save');
  if (images.length === 0) throw new BerthError('USAGE', 'name at least one image to save', { hint: 'berth save IMAGE... -o FILE' });
  const file = path.resolve(output);
  await checkOutput(file);
  const entries: Entry[] = await locked(ctx, `save ${images.join(' ')}`, async () => {
    const store = await Store.open(ctx.paths.root);
    const out: Entry[] = [];
    for (const name of images) {
      const { image, reference } = await obtainImage(ctx, store, parseImageReference(name), options, 'missing', false);
      if (reference.transport !== 'docker') {
        throw new BerthError('USAGE', `${name} is not a registry image`, { hint: 'a bundle records registry names (HOST/REPO:TAG), under which load checks the trust policy' });
      }
      out.push({ ref: reference, image });
    }
    return out;
  });

  await removeStaleTemps(file);
  const pack = tarStream.pack();
  const tmp = `${file}${TMP_INFIX}${process.pid}`;
  const forget = removeOnInterrupt(tmp);
  let writeError: unknown;
  const written = pipeline(pack, createWriteStream(tmp, { flags: 'wx', mode: 0o644 }));
  written.catch((e: unknown) => (writeError ??= e)); // awaited below; a failure of the writer also ends pack's entries
  const seen = new Set<string>();
  let bytes = 0;
  const put = async (name: string, data: Buffer) => {
    await addEntry(pack, name, data.length, data);
    bytes += data.length;
  };
  const putBlob = async (digest: Digest, data: Buffer) => {
    if (seen.has(digest)) return;
    seen.add(digest);
    await put(`blobs/sha256/${encodedOf(digest)}`, data);
    crashPoint('save.blob-written');
  };
  try {
    for (const dir of ['blobs/', 'blobs/sha256/', 'berth/', `${SIGNATURES_DIR}/`]) pack.entry({ name: dir, type: 'directory', mode: 0o755, mtime: EPOCH });
    await put('oci-layout', Buffer.from('{"imageLayoutVersion":"1.0.0"}'));
    const index = {
      schemaVersion: 2,
      mediaType: MediaType.ociIndex,
      manifests: entries.map(({ ref, image }) => ({
        mediaType: image.manifest.mediaType,
        digest: image.manifestDigest,
        size: image.manifestBytes.length,
        platform: { os: image.config.os, architecture: image.config.architecture },
        annotations: { [REF_NAME]: dockerName(ref) },
      })),
    };
    await put('index.json', Buffer.from(`${JSON.stringify(index, null, 2)}\n`));
    for (const { ref, image } of entries) {
      ctx.report.step(`Saving ${formatReference(ref)} (${image.manifestDigest})`);
      await putBlob(image.manifestDigest, image.manifestBytes);
      await putBlob(image.manifest.config.digest, image.configBytes);
      const missing = image.manifest.layers.filter((l) => !seen.has(l.digest));
      if (missing.length > 0) {
        const source = await openImageSource(ref, options.source);
        try {
          for (const layer of missing) {
            if (seen.has(layer.digest)) continue;
            seen.add(layer.digest);
            const what = `layer ${layer.digest} of ${source.description}`;
            const blob = verifiedStream(await source.getBlob(layer), layer.digest, layer.size, what);
            await addEntry(pack, `blobs/sha256/${encodedOf(layer.digest)}`, layer.size, blob);
            bytes += layer.size;
            crashPoint('save.blob-written');
          }
        } finally {
          await source.close();
        }
      }
      const hex = encodedOf(image.manifestDigest);
      if (seen.has(`sig:${hex}`)) continue;
      seen.add(`sig:${hex}`);
      pack.entry({ name: `${SIGNATURES_DIR}/${hex}/`, type: 'directory', mode: 0o755, mtime: EPOCH });
      for (const [i, sig] of image.signatures.slice(0, MAX_SIGNATURES).entries()) await put(`${SIGNATURES_DIR}/${hex}/signature-${i + 1}`, sig);
      if (image.signedManifestBytes) await put(`${SIGNATURES_DIR}/${hex}/signed-manifest`, image.signedManifestBytes);
      const sigstore = image.sigstoreSignatures.slice(0, MAX_SIGNATURES);
      if (sigstore.length > 0) await put(`${SIGNATURES_DIR}/${hex}/${SIGSTORE_FILE}`, encodeSigstoreList(sigstore));
    }
    pack.finalize();
    await written;
    // Durable before it gets the final name: a power cut must not leave FILE empty or short.
    await syncFile(tmp);
    crashPoint('save.written');
    await rename(tmp, file);
    await syncDir(path.dirname(file));
  } catch (e) {
    // The writer's own failure (disk full, directory gone) is the cause; the pack only reports it was destroyed.
    const cause = writeError ?? e;
    pack.destroy();
    await written.catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    if (cause !== e && !(cause instanceof BerthError)) {
      throw new BerthError('IO_ERROR', `cannot write ${file}: ${(cause as Error).message}`, { hint: `check ${path.dirname(file)}`, cause });
    }
    throw cause;
  } finally {
    forget();
  }
  return {
    file,
    images: entries.map(({ ref, image }) => ({
      reference: formatReference(ref),
      digest: image.manifestDigest,
      layers: image.manifest.layers.length,
      signatures: Math.min(image.signatures.length, MAX_SIGNATURES),
      sigstoreSignatures: Math.min(image.sigstoreSignatures.length, MAX_SIGNATURES),
    })),
    blobs: [...seen].filter((s) => !s.startsWith('sig:')).length,
    bytes,
  };
}

const EPOCH = new Date(0);
/** FILE.tmp-PID: the bundle being written; renamed to FILE only when complete. */
const TMP_INFIX = '.tmp-';

/**
 * Temp files of earlier saves to `file` whose process is gone (killed mid-way:
 * save holds no lock while it writes, so recovery cannot know of them). A
 * live writer's (another berth saving to the same name) is left alone.
 */
async function removeStaleTemps(file: string): Promise<void> {
  const prefix = `${path.basename(file)}${TMP_INFIX}`;
  const dir = path.dirname(file);
  for (const entry of await readdirIfExists(dir)) {
    if (!entry.startsWith(prefix)) continue;
    const pid = Number(entry.slice(prefix.length));
    // Our own pid in the name: a process long gone had it before us.
    if (Number.isInteger(pid) && pid > 0 && (pid === process.pid || !alive(pid))) await ifExists(unlink(path.join(dir, entry)));
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it exists, as another user's.
    return errnoCode(e) !== 'ESRCH';
  }
}

/** `-o FILE`: its directory must exist and FILE must not be a directory; checked before anything is pulled. */
async function checkOutput(file: string): Promise<void> {
  const dir = path.dirname(file);
  // Only "not there" is the user's mistake; EACCES, EIO... surface as themselves.
  const st = await statIfExists(dir);
  if (!st?.isDirectory()) throw new BerthError('USAGE', `--output ${file}: no directory ${dir}`, { hint: 'create it first, or write the bundle elsewhere' });
  if ((await statIfExists(file))?.isDirectory()) throw new BerthError('USAGE', `--output ${file} is a directory`, { hint: 'name the bundle file, e.g. DIR/images.tar' });
}

/** One regular file into the tar; resolves when its bytes are in (the pack's backpressure). */
function addEntry(pack: tarStream.Pack, name: string, size: number, data: Buffer | Readable): Promise<void> {
  return new Promise((resolve, reject) => {
    const header = { name, size, mode: 0o644, mtime: EPOCH, uid: 0, gid: 0, uname: 'root', gname: 'root' };
    if (Buffer.isBuffer(data)) {
      pack.entry(header, data, (err) => (err ? reject(err) : resolve()));
      return;
    }
    const sink = pack.entry(header, (err) => (err ? reject(err) : resolve()));
    pipeline(data, sink).catch(reject);
  });
}

/** What a bundle holds for one manifest besides the layout: signatures and the bytes they sign. */
export interface BundleSignatures {
  signatures: Buffer[];
  /** Untrusted, as the bundle has them; checkTrust verifies them. */
  sigstoreSignatures: UntrustedSigstoreSignature[];
  /** The signed top-level manifest (an index), when it is not the manifest itself. */
  signedManifestBytes?: Buffer;
}

/**
 * The signatures `file` (a bundle) holds for `manifestDigest`; none when it
 * is a plain OCI archive. Exported for oci-archive: pulls (see pull.ts).
 */
export async function readBundleSignatures(file: string | TarIndex, manifestDigest: Digest): Promise<BundleSignatures> {
  const tar = typeof file === 'string' ? await TarIndex.open(file, 'oci-archive') : file;
  const dir = `${SIGNATURES_DIR}/${encodedOf(manifestDigest)}`;
  const signatures: Buffer[] = [];
  for (let i = 1; i <= MAX_SIGNATURES; i++) {
    const sig = await tar.read(`${dir}/signature-${i}`, MAX_SIGNATURE_BYTES, `signature-${i} of ${manifestDigest}`);
    if (sig === undefined) break;
    signatures.push(sig);
  }
  const sigstoreSignatures = await readBundleSigstore(tar, `${dir}/${SIGSTORE_FILE}`, manifestDigest);
  const signed = await tar.read(`${dir}/signed-manifest`, MAX_MANIFEST_BYTES, `signed manifest of ${manifestDigest}`);
  return signed === undefined ? { signatures, sigstoreSignatures } : { signatures, sigstoreSignatures, signedManifestBytes: signed };
}

/** A bundle's sigstore.json, strictly parsed: a list of at most MAX_SIGNATURES encoded signatures. */
async function readBundleSigstore(tar: TarIndex, name: string, manifestDigest: Digest): Promise<UntrustedSigstoreSignature[]> {
  const what = `sigstore signatures of ${manifestDigest}`;
  const bytes = await tar.read(name, MAX_SIGSTORE_FILE_BYTES, what);
  if (bytes === undefined) return [];
  try {
    return decodeSigstoreList(bytes, MAX_SIGNATURES);
  } catch (e) {
    throw new BerthError('MANIFEST_INVALID', `${tar.file}: ${what} are invalid: ${(e as Error).message}`, { hint: 'the bundle is corrupt or tampered with; nothing was loaded' });
  }
}

export interface LoadedImage {
  reference: string;
  digest: Digest;
  layers: number;
  fetchedLayers: number;
  signatures: number;
  sigstoreSignatures: number;
  /** The policy requirement that accepted it. */
  requirement: string;
}

interface Checked extends TrustedImage {
  source: OciArchiveImageSource;
  requirement: string;
}

/**
 * `berth load FILE`: every image of the bundle, checked against the trust
 * policy under its registry name with the bundle's signatures, then its
 * config and layers verified (digest, then diff_id) into the store by the
 * layer pipeline, as pull does. All images pass the policy before any layer
 * is imported, and images and references are committed only after every
 * layer is in, under an intent: a refused or corrupt bundle, or a killed
 * load, leaves no image or reference (at most unreferenced layers, which
 * prune removes).
 */
export async function load(ctx: OpContext, input: string, options: PullOptions): Promise<LoadedImage[]> {
  requireRoot('load');
  const file = path.resolve(input);
  return locked(ctx, `load ${input}`, async () => {
    const store = await Store.open(ctx.paths.root);
    const tar = await TarIndex.open(file, 'bundle');
    const indexBytes = await tar.read('index.json', MAX_MANIFEST_BYTES, 'index.json');
    if (indexBytes === undefined || (await tar.read('oci-layout', 64 * 1024, 'oci-layout')) === undefined) {
      throw new BerthError('IMAGE_NOT_FOUND', `${file} is not an OCI archive (no index.json or oci-layout)`, { hint: 'make bundles with berth save' });
    }
    const index = parseManifest(indexBytes, MediaType.ociIndex, `${file}: index.json`);
    if (index.kind !== 'index' || index.manifests.length === 0) {
      throw new BerthError('MANIFEST_INVALID', `${file}: index.json lists no images`, { hint: 'make bundles with berth save' });
    }
    const checked: Checked[] = [];
    try {
      for (const d of index.manifests) checked.push(await checkEntry(ctx, file, tar, d, options));
      const counts = await storeImages(ctx, store, 'load', checked, options.concurrency);
      return checked.map((c, i) => ({
        reference: c.reference,
        digest: c.resolved.manifestDigest,
        layers: c.resolved.manifest.layers.length,
        fetchedLayers: counts[i]!.fetchedLayers,
        signatures: c.signatures.length,
        sigstoreSignatures: c.sigstoreSignatures?.length ?? 0,
        requirement: c.requirement,
      }));
    } finally {
      for (const c of checked) await c.source.close();
    }
  });
}

/** One index.json entry: its name, manifest digest, trust verdict and config; nothing is stored. */
async function checkEntry(ctx: OpContext, file: string, tar: TarIndex, d: Descriptor, options: PullOptions): Promise<Checked> {
  const name = d.annotations?.[REF_NAME];
  if (name === undefined) {
    throw new BerthError('MANIFEST_INVALID', `${file}: image ${d.digest} has no ${REF_NAME} annotation`, { hint: 'berth load needs the registry name of every image (berth save writes it)' });
  }
  const parsed = parseImageReference(name);
  if (parsed.transport !== 'docker') {
    throw new BerthError('INVALID_REFERENCE', `${file}: image name ${JSON.stringify(name)} has no registry host`, { hint: 'berth load records images under HOST/REPO:TAG names, as berth save writes them' });
  }
  ctx.report.step(`Loading ${formatReference(parsed)} (${d.digest})`);
  const archiveRef: OciArchiveReference = { transport: 'oci-archive', file, ref: name };
  const source = await OciArchiveImageSource.open(archiveRef, options.platform);
  try {
    const top = await source.getManifest();
    const actual = digestOf(top.untrustedBytes);
    if (actual !== d.digest) {
      throw new BerthError('DIGEST_MISMATCH', `${file}: the manifest of ${name} has digest ${actual}, index.json says ${d.digest}`, { hint: 'the bundle is corrupt or tampered with; nothing was loaded' });
    }
    const { signatures, sigstoreSignatures, signedManifestBytes } = await readBundleSignatures(tar, d.digest);
    if (signedManifestBytes !== undefined) checkSignedIndex(signedManifestBytes, d.digest, file, name);
    const verdict = await checkTrust(parsed, signedManifestBytes ?? top.untrustedBytes, options.trust, signatures, keptSigstoreSource(sigstoreSignatures));
    const resolved = await resolveImage(source, { top, ...(options.platform ? { platform: options.platform } : {}) });
    return {
      reference: formatReference(parsed),
      source,
      resolved,
      signatures: verdict.signatures,
      sigstoreSignatures: verdict.sigstoreSignatures,
      ...(signedManifestBytes ? { signedManifestBytes } : {}),
      requirement: verdict.requirement,
    };
  } catch (e) {
    await source.close();
    throw e;
  }
}

/** The signed top-level bytes must be an index that lists the manifest: else the signatures vouch for something else. */
function checkSignedIndex(bytes: Buffer, manifestDigest: Digest, file: string, name: string): void {
  const signed = parseManifest(bytes, undefined, `${file}: signed manifest of ${name}`);
  if (signed.kind !== 'index' || !signed.manifests.some((m) => m.digest === manifestDigest)) {
    throw new BerthError('DIGEST_MISMATCH', `${file}: the signed manifest of ${name} does not list ${manifestDigest}`, { hint: 'the bundle is corrupt or tampered with; nothing was loaded' });
  }
}
