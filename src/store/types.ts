/**
 * The store's vocabulary: what goes in, what comes out, and the promises each
 * side makes. Implementations live next to this file; callers should need
 * nothing else to use a Store.
 *
 * On-disk layout under ROOT/store (see store.ts for the whole picture):
 *   objects/XX/YYYY…   file objects (content + mode + owner + xattrs), keyed by ObjectKey
 *   layers/ALG-HEX     one layer record per imported layer, keyed by diff_id
 *   images/ALG-HEX     one image record per manifest digest
 *   refs/NAME          reference -> manifest digest
 *   tmp/PID.RANDOM/    staging for one operation of one process
 */
import type { Digest } from '../image/digest.ts';
import type { ImageConfig, ImageManifest } from '../image/manifest.ts';
import type { UntrustedSigstoreSignature } from '../image/sigstore.ts';

/**
 * The key of an object (a regular file or a symlink): 64 lowercase hex
 * digits, the sha256 of the object's canonical header (kind, mode incl.
 * setuid/setgid/sticky, uid, gid, xattrs) followed by its content or symlink
 * target (objects.ts). Two entries with the same key are interchangeable, so
 * one object is hard-linked wherever it appears.
 */
export type ObjectKey = string & { readonly __objectKey: unique symbol };

/** The metadata of a file object that is part of its key. */
export interface ObjectMeta {
  /** Permission bits including setuid/setgid/sticky (& 0o7777). */
  mode: number;
  uid: number;
  gid: number;
  /**
   * Extended attributes from PAX `SCHILY.xattr.*` records, raw bytes. They are
   * part of the key (two files that differ only in xattrs are different
   * objects) and kept next to the object, but NOT set on the object file:
   * Node has no setxattr. A file that needs e.g. `security.capability` will
   * not have it in a checkout.
   */
  xattrs: ReadonlyMap<string, Buffer>;
}

/**
 * One entry of a layer record, in tar order. Paths are normalised relative
 * paths ("a/b", never "/", "." or ".."), exactly as the layer named them;
 * symlinks in parents are resolved only at checkout, in the merged tree.
 * mtime is in seconds since the epoch (may be fractional).
 */
export type LayerEntry =
  | { type: 'dir'; path: string; mode: number; uid: number; gid: number; mtime: number }
  /** A regular file; its mode/uid/gid are the object's. */
  | { type: 'file'; path: string; mode: number; uid: number; gid: number; mtime: number; object: ObjectKey; size: number }
  /** A hard link to `target`, an earlier regular file of the same layer; shares its object. */
  | { type: 'hardlink'; path: string; target: string; object: ObjectKey; size: number }
  /** `target` is stored verbatim (absolute targets too); never followed. `object` is the symlink object checkouts hard-link. */
  | { type: 'symlink'; path: string; target: string; uid: number; gid: number; mtime: number; object: ObjectKey }
  /** `.wh.NAME`: hides `path` (the hidden entry's path) of lower layers. */
  | { type: 'whiteout'; path: string }
  /** `.wh..wh..opq`: hides everything lower layers put in the directory `path`. */
  | { type: 'opaque'; path: string }
  /** Recorded for fidelity; never created at checkout (containers get /dev from a tmpfs). */
  | { type: 'char' | 'block' | 'fifo'; path: string; mode: number; uid: number; gid: number; mtime: number; devmajor: number; devminor: number };

/** A parsed layer record. */
export interface LayerRecord {
  diffId: Digest;
  /** Tar entries read (including whiteouts and skipped entries). */
  entries: number;
  /** Bytes of regular-file content in the layer. */
  bytes: number;
  records: LayerEntry[];
}

export interface ImportLayerOptions {
  /** Told about entries that are recorded but will not be materialised, and why. */
  onSkip?: (path: string, why: string) => void;
  /** Cap on the uncompressed tar stream, every byte counted (default 64 GiB). */
  maxBytes?: number;
}

export interface ImportLayerResult {
  /** Tar entries read. */
  entries: number;
  /** Bytes of regular-file content. */
  bytes: number;
  /** Objects this import added to the store (the rest were already there). */
  newObjects: number;
  newBytes: number;
}

/** What putImage stores. The caller has verified the bytes against their digests; putImage checks again. */
export interface ImageInput {
  manifestDigest: Digest;
  manifestBytes: Buffer;
  configBytes: Buffer;
  /** Detached signatures as fetched (may be empty); opaque to the store. */
  signatures: Buffer[];
  /** Sigstore signatures as fetched (cosign attachments, bundles); opaque to the store, re-checked by trust on use. */
  sigstoreSignatures?: UntrustedSigstoreSignature[];
  /**
   * The exact bytes the signatures sign, when that is not the manifest itself
   * (the top-level index of a multi-platform image). Kept verbatim so that
   * signatures can be re-checked later; not interpreted by the store.
   */
  signedManifestBytes?: Buffer;
}

export interface StoredImage {
  manifestDigest: Digest;
  manifestBytes: Buffer;
  configBytes: Buffer;
  manifest: ImageManifest;
  config: ImageConfig;
  signatures: Buffer[];
  /** See ImageInput.sigstoreSignatures; empty when none were kept. */
  sigstoreSignatures: UntrustedSigstoreSignature[];
  /** See ImageInput.signedManifestBytes; absent when the signatures sign the manifest. */
  signedManifestBytes?: Buffer;
  /** References (canonical strings) that point at this image, sorted. */
  references: string[];
  /** When the image was first stored (ISO 8601). */
  created: string;
  /** Bytes of the distinct objects its layers use (shared objects counted once; a symlink counts its target's length). */
  size: number;
}

export interface CheckoutOptions {
  /** Copy objects instead of failing when the target is on another filesystem (EXDEV). */
  copy?: boolean;
  /** Told once when files are copied rather than hard-linked, and why. */
  onCopy?: (why: string) => void;
  /** Told about entries not created (device nodes, fifos). */
  onSkip?: (path: string, why: string) => void;
}

export interface CheckoutResult {
  /** Regular files (hard links to objects, or copies). */
  files: number;
  /** Directories, not counting the checkout root. */
  dirs: number;
  /** Symbolic links (hard links to symlink objects, or new symlinks). */
  links: number;
  /** True when at least one file was copied because hard links were impossible. */
  copied: boolean;
}

export interface GcResult {
  images: number;
  layers: number;
  objects: number;
  /** Sum of the sizes of the removed objects (space is only returned once no checkout links them). */
  bytes: number;
}

export interface VerifyOptions {
  /** Drop corrupted objects and the records that need them, so the next pull restores them. */
  repair?: boolean;
}

export interface VerifyResult {
  /** True when no problem was found (before any repair). */
  ok: boolean;
  checked: { objects: number; layers: number; images: number };
  /** One line per problem, naming the object/layer/image. */
  problems: string[];
  /** Objects and records removed by repair. */
  repaired: number;
}
