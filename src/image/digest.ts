/**
 * Content digests (OCI image-spec descriptor.md#digests). Only sha256 and
 * sha512 are accepted; the encoded part is validated so that a digest can be
 * used safely as a file name.
 */
import { createHash, type Hash } from 'node:crypto';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { BerthError } from '../errors.ts';

export type Algorithm = 'sha256' | 'sha512';

const encodedLength: Record<Algorithm, number> = { sha256: 64, sha512: 128 };

/** A validated "algorithm:hex" digest. */
export type Digest = string & { readonly __digest: unique symbol };

export function parseDigest(value: string, what = 'digest'): Digest {
  const m = /^(sha256|sha512):([a-f0-9]+)$/.exec(value);
  if (!m || m[2]!.length !== encodedLength[m[1] as Algorithm]) {
    throw new BerthError('MANIFEST_INVALID', `invalid ${what} ${JSON.stringify(value.slice(0, 140))}`, {
      hint: 'a digest looks like sha256:<64 hex digits>',
    });
  }
  return value as Digest;
}

export function isDigest(value: string): boolean {
  try {
    parseDigest(value);
    return true;
  } catch {
    return false;
  }
}

export function algorithmOf(d: Digest): Algorithm {
  return d.slice(0, d.indexOf(':')) as Algorithm;
}

export function encodedOf(d: Digest): string {
  return d.slice(d.indexOf(':') + 1);
}

export function digestOf(data: Buffer | string, algorithm: Algorithm = 'sha256'): Digest {
  return `${algorithm}:${createHash(algorithm).update(data).digest('hex')}` as Digest;
}

/** Short form for people: the first 12 hex digits. */
export function shortDigest(d: string): string {
  return d.slice(d.indexOf(':') + 1, d.indexOf(':') + 13);
}

/**
 * A pass-through stream that hashes and counts what flows through it and
 * fails the stream (before its end reaches the consumer's 'finish') when the
 * content does not match `expected` or exceeds `expectedSize`. Consumers must
 * treat everything they received as untrusted until the stream ends cleanly.
 */
export class VerifyingStream extends Transform {
  readonly expected: Digest;
  readonly expectedSize: number | undefined;
  readonly what: string;
  private readonly hash: Hash;
  private received = 0;

  constructor(expected: Digest, expectedSize: number | undefined, what: string) {
    super();
    this.expected = expected;
    this.expectedSize = expectedSize;
    this.what = what;
    this.hash = createHash(algorithmOf(expected));
  }

  get bytes(): number {
    return this.received;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.received += chunk.length;
    if (this.expectedSize !== undefined && this.received > this.expectedSize) {
      done(this.mismatch(`is larger than its declared size ${this.expectedSize}`));
      return;
    }
    this.hash.update(chunk);
    done(null, chunk);
  }

  override _flush(done: TransformCallback): void {
    if (this.expectedSize !== undefined && this.received !== this.expectedSize) {
      done(this.mismatch(`has ${this.received} bytes, its descriptor says ${this.expectedSize}`));
      return;
    }
    const actual = `${algorithmOf(this.expected)}:${this.hash.digest('hex')}`;
    if (actual !== this.expected) {
      done(this.mismatch(`has digest ${actual}`));
      return;
    }
    done();
  }

  private mismatch(why: string): BerthError {
    return new BerthError('DIGEST_MISMATCH', `${this.what} ${this.expected} ${why}`, {
      hint: 'the registry or medium returned corrupt or tampered data; nothing was installed',
    });
  }
}

/** `source` piped through a VerifyingStream; an error of either ends the result with that error. */
export function verifiedStream(source: Readable, expected: Digest, expectedSize: number | undefined, what: string): VerifyingStream {
  const verifier = new VerifyingStream(expected, expectedSize, what);
  source.once('error', (e) => verifier.destroy(e));
  verifier.once('close', () => source.destroy());
  return source.pipe(verifier);
}
