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
import type { Descriptor, Platform } from '../image/manifest.ts';
import type { DockerReference } from '../image/reference.ts';
import type { UntrustedSigstoreSignature } from '../image/sigstore.ts';
import type { ImageReference } from './reference.ts';

export interface UntrustedManifest {
  /** The bytes as served; their digest is the manifest's identity. */
  readonly untrustedBytes: Buffer;
  /** Content-Type or descriptor media type, if the medium gave one. */
  readonly mediaType: string | undefined;
  /** The digest the medium claims for these bytes (Docker-Content-Digest, index.json), if any. */
  readonly claimedDigest: Digest | undefined;
}

/**
 * A descriptor as getBlob takes it: `urls` (image-spec descriptor.md) are
 * other places the blob may be fetched from when the medium lacks it
 * (non-distributable layers); they are untrusted like everything else.
 */
export interface BlobDescriptor extends Descriptor {
  urls?: readonly string[];
}

export interface BlobOptions {
  /** Start at this byte of the blob (to continue a partial download). */
  offset?: number;
}

export interface ImageSource {
  /** The reference the bytes come from (for a short name: the candidate that had the image). */
  readonly reference: ImageReference;
  /** For messages: the reference as the user would recognise it. */
  readonly description: string;
  /** The platform to pick from an index, when the user chose one (SourceOptions.platform). */
  readonly platform?: Platform;
  /**
   * The manifest (or index) the reference names, or the one with `digest`
   * when given (a child of an index). At most MAX_MANIFEST_BYTES are read.
   */
  getManifest(digest?: Digest): Promise<UntrustedManifest>;
  /**
   * A stream of the blob's bytes from `options.offset` (default 0). The
   * stream is unverified; it ends with an error if the medium fails mid-way
   * (after the transport's own bounded retries and resumes).
   */
  getBlob(descriptor: BlobDescriptor, options?: BlobOptions): Promise<Readable>;
  /**
   * The sigstore signatures the medium holds for the manifest `manifestDigest`
   * (a registry: cosign's `.sig` attachments and Sigstore bundle referrers);
   * absent for media that hold none. Untrusted; throws when they cannot be
   * read (a missing signature is an empty list, never an error).
   */
  getSigstoreSignatures?(manifestDigest: Digest): Promise<UntrustedSigstoreSignature[]>;
  close(): Promise<void>;
}

/** A floor on transfer speed: at least `bytesPerSecond` on average over `windowMs`. */
export interface MinRate {
  bytesPerSecond: number;
  windowMs: number;
}

/** Bounded retries of requests that failed with 5xx, 429 or a transient network error. */
export interface RetryPolicy {
  /** Tries in all, including the first. */
  attempts: number;
  /** Delay before the first retry; doubled for each further one. */
  baseDelayMs: number;
  /** No delay (nor Retry-After) is longer than this. */
  maxDelayMs: number;
}

export interface SourceOptions {
  /**
   * false: allow plain HTTP and unverified TLS for registries; true: require
   * verified TLS even where registries.conf says insecure; unset: what
   * registries.conf says (verified TLS by default).
   */
  tlsVerify?: boolean;
  /** A directory of *.crt, *.cert and *.key for registries, instead of /etc/containers/certs.d/HOST[:PORT]. */
  certDir?: string;
  /** USER:PASS for registries; overrides the auth files. */
  creds?: string;
  /** Read credentials from this auth.json only (instead of the standard places). */
  authFile?: string;
  /** os/arch[/variant] to pick from an image index (default: this host). */
  platform?: Platform | string;
  /** registries.conf to use (default $BERTH_REGISTRIES_CONF, else /etc/containers/registries.conf). */
  registriesConf?: string;
  retry?: Partial<RetryPolicy>;
  /** How often a blob download that breaks off is continued with a Range request. */
  resumeAttempts?: number;
  /** A read that stalls this long fails (or resumes). */
  idleTimeoutMs?: number;
  /**
   * A read slower than this on average over the window fails (or resumes):
   * a drip never trips the idle timeout. Default $BERTH_MIN_RATE, else
   * 1 KiB/s over 60 s; null for no floor.
   */
  minRate?: MinRate | null;
  connectTimeoutMs?: number;
}

/**
 * One transport, as containers/image's types.ImageTransport: everything the
 * rest of berth needs to know about it, in one object (each transport
 * folder exports one; index.ts lists them in TRANSPORTS). The compiler
 * checks that every kind of ImageReference (reference.ts) has one.
 */
export interface Transport<R extends { readonly transport: string }> {
  /** The reference kind (`ref.transport`); also its policy.json transport name. */
  readonly name: R['transport'];
  /**
   * How users write it: `prefix` then what `parse` reads. undefined: the
   * transport has no prefix of its own; references without a known prefix
   * are registry names (docker or short-name, image/reference.ts).
   */
  readonly syntax: { readonly prefix: string; parse(rest: string, input: string): R } | undefined;
  /** Canonical string form, usable as input again. */
  format(ref: R): string;
  /** The default container name: the last component of the repository (or file, or layout dir). */
  baseName(ref: R): string;
  /** The manifest digest the reference pins, which the fetched manifest must have. */
  pinnedDigest(ref: R): Digest | undefined;
  /** How trust sees these references; undefined: they must be resolved first (short names). */
  readonly trust: TransportTrust<R> | undefined;
  /** Opens the image the reference names; implementations load lazily. */
  open(ref: R, options: SourceOptions, platform: Platform | undefined): Promise<ImageSource>;
}

/** containers-policy.json(5) for one transport. */
export interface TransportTrust<R> {
  /** The policy scopes the image falls under, most specific first; the transport default "" not included. */
  scopes(ref: R): string[];
  /** undefined when `scope` (not "") is a valid policy scope of this transport, else why not. */
  validateScope(scope: string): string | undefined;
  /** A scope as a user typed it (after `TRANSPORT:`), in the form the policy stores. */
  normalizeScope(scope: string): string;
  /** The registry identity signatures claim for this image (signedIdentity matching); undefined: only exactReference/exactRepository apply. */
  identity(ref: R): DockerReference | undefined;
}
