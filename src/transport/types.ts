/**
 * The transport vocabulary: where image bytes come from. One folder per
 * transport, one file per role (as containers/image does).
 *
 * Contract: a source hands out bytes exactly as the medium has them and
 * vouches for nothing. Callers verify every manifest and blob against its
 * digest (see image/digest.ts VerifyingStream) before trusting any of it.
 */
import type { Readable } from 'node:stream';
import type { Digest } from '../image/digest.ts';
import type { Descriptor } from '../image/manifest.ts';
import type { ImageReference } from '../image/reference.ts';

export interface UntrustedManifest {
  /** The bytes as served; their digest is the manifest's identity. */
  readonly untrustedBytes: Buffer;
  /** Content-Type or descriptor media type, if the medium gave one. */
  readonly mediaType: string | undefined;
  /** The digest the medium claims for these bytes (Docker-Content-Digest, index.json), if any. */
  readonly claimedDigest: Digest | undefined;
}

export interface ImageSource {
  readonly reference: ImageReference;
  /** For messages: the reference as the user would recognise it. */
  readonly description: string;
  /**
   * The manifest (or index) the reference names, or the one with `digest`
   * when given (a child of an index). At most MAX_MANIFEST_BYTES are read.
   */
  getManifest(digest?: Digest): Promise<UntrustedManifest>;
  /**
   * A stream of the blob's bytes. The stream is unverified; it ends with an
   * error if the medium fails mid-way.
   */
  getBlob(descriptor: Descriptor): Promise<Readable>;
  close(): Promise<void>;
}

export interface SourceOptions {
  /** false: allow plain HTTP and unverified TLS for registries (per command). */
  tlsVerify: boolean;
}
