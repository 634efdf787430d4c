/**
 * Layer decompression as a stream: gzip (node:zlib), zstd (the zstd binary
 * when the host has one, else the pure-JS fzstd), or none. The output can be
 * capped so that a small hostile layer cannot expand into a full disk or an
 * exhausted heap; every failure surfaces as LAYER_INVALID.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Duplex, PassThrough, Transform, type TransformCallback } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { Decompress } from 'fzstd';
import { BerthError } from '../errors.ts';
import type { Compression } from './manifest.ts';

export interface DecompressorOptions {
  /** Fail with LAYER_INVALID once the output exceeds this many bytes. */
  maxBytes?: number;
  /** zstd engine: the binary when present (auto, default), or always one of them. */
  zstd?: 'auto' | 'binary' | 'js';
  /** For messages, e.g. "layer sha256:... of docker://...". */
  what?: string;
}

/**
 * zlib's output chunk. The default (16 KiB) costs a thread-pool round trip
 * and a pass down the stream chain per 16 KiB; with 256 KiB a 300 MB image
 * pulls about 25% faster (bench/, docs/performance.md) and is no slower than
 * a `gzip -dc` or `pigz -dc` child process, which were measured too.
 */
const GUNZIP_CHUNK_BYTES = 256 * 1024;

export function decompressor(compression: Compression, options: DecompressorOptions = {}): Duplex {
  const what = options.what ?? 'layer';
  const max = options.maxBytes ?? Number.POSITIVE_INFINITY;
  let inner: Duplex;
  switch (compression) {
    case 'none':
      inner = new PassThrough();
      break;
    case 'gzip':
      inner = createGunzip({ chunkSize: GUNZIP_CHUNK_BYTES });
      break;
    case 'zstd': {
      const engine = options.zstd ?? 'auto';
      const binary = engine === 'js' ? undefined : zstdBinary();
      if (engine === 'binary' && binary === undefined) {
        throw new BerthError('LAYER_INVALID', `cannot decompress zstd ${what}: no zstd binary in PATH`, { hint: 'install zstd, or let berth use its built-in decoder' });
      }
      // The JS decoder cannot be interrupted mid-chunk, so it enforces the cap itself.
      inner = binary === undefined ? new FzstdTransform(max, what) : new ZstdProcess(binary);
      break;
    }
  }
  return new Guarded(inner, max, what);
}

function bomb(what: string, max: number): BerthError {
  return new BerthError('LAYER_INVALID', `${what} decompresses to more than ${max} bytes`, {
    hint: 'the layer is larger than allowed, or a decompression bomb; nothing was installed',
  });
}

function wrap(e: unknown, what: string): BerthError {
  if (e instanceof BerthError) return e;
  return new BerthError('LAYER_INVALID', `${what} does not decompress: ${(e as Error)?.message ?? String(e)}`, { hint: 'the image is corrupt', cause: e });
}

/**
 * Owns `inner`: counts and caps what it produces, maps its errors, and
 * destroys it when destroyed (so a decoder process never outlives its stream).
 */
class Guarded extends Duplex {
  readonly #inner: Duplex;
  readonly #max: number;
  readonly #what: string;
  #out = 0;

  constructor(inner: Duplex, max: number, what: string) {
    super();
    this.#inner = inner;
    this.#max = max;
    this.#what = what;
    inner.on('data', (chunk: Buffer) => {
      this.#out += chunk.length;
      if (this.#out > this.#max) {
        this.destroy(bomb(this.#what, this.#max));
        return;
      }
      if (!this.push(chunk)) inner.pause();
    });
    inner.once('end', () => this.push(null));
    inner.once('error', (e) => this.destroy(wrap(e, this.#what)));
  }

  override _read(): void {
    this.#inner.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, done: (e?: Error | null) => void): void {
    this.#inner.write(chunk, (e) => done(e ? wrap(e, this.#what) : null));
  }

  override _final(done: (e?: Error | null) => void): void {
    this.#inner.end();
    done();
  }

  override _destroy(e: Error | null, done: (e?: Error | null) => void): void {
    // Done only when the inner stream is (a decoder process killed and reaped).
    if (this.#inner.closed) {
      done(e);
      return;
    }
    this.#inner.once('close', () => done(e));
    this.#inner.destroy();
  }
}

class FzstdTransform extends Transform {
  readonly #decoder: Decompress;
  #out = 0;

  constructor(max: number, what: string) {
    super();
    this.#decoder = new Decompress((chunk) => {
      this.#out += chunk.length;
      // Thrown out of push(): one compressed chunk can hold gigabytes of blocks.
      if (this.#out > max) throw bomb(what, max);
      this.push(Buffer.from(chunk));
    });
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    try {
      this.#decoder.push(chunk);
      done();
    } catch (e) {
      done(e as Error);
    }
  }

  override _flush(done: TransformCallback): void {
    try {
      this.#decoder.push(new Uint8Array(0), true);
      done();
    } catch (e) {
      done(e as Error);
    }
  }
}

/** `zstd -dc` as a duplex; its output ends only after a clean exit. */
class ZstdProcess extends Duplex {
  readonly #child: ChildProcess;
  #stderr = '';
  #stdoutEnded = false;
  #exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;

  constructor(binary: string) {
    super();
    const child = spawn(binary, ['-d', '-c', '-q', '--no-progress'], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.#child = child;
    child.stdout!.on('data', (chunk: Buffer) => {
      if (!this.push(chunk)) child.stdout!.pause();
    });
    child.stdout!.once('end', () => {
      this.#stdoutEnded = true;
      this.#maybeEnd();
    });
    child.stderr!.on('data', (c: Buffer) => {
      if (this.#stderr.length < 4096) this.#stderr += c.toString('utf8');
    });
    // EPIPE when zstd quits early: the exit status explains why.
    child.stdin!.on('error', () => {});
    child.once('error', (e) => this.destroy(e));
    child.once('close', (code, signal) => {
      this.#exit = { code, signal };
      if (code !== 0 && !this.destroyed) {
        const why = this.#stderr.replace(/[^\x20-\x7e]+/g, ' ').trim().slice(0, 300) || (signal ? `killed by ${signal}` : `exit status ${code}`);
        this.destroy(new Error(`zstd: ${why}`));
        return;
      }
      this.#maybeEnd();
    });
  }

  #maybeEnd(): void {
    if (this.#stdoutEnded && this.#exit?.code === 0) this.push(null);
  }

  override _read(): void {
    this.#child.stdout!.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, done: (e?: Error | null) => void): void {
    if (this.#exit !== undefined) {
      done();
      return;
    }
    this.#child.stdin!.write(chunk, () => done());
  }

  override _final(done: (e?: Error | null) => void): void {
    this.#child.stdin!.end(() => done());
  }

  override _destroy(e: Error | null, done: (e?: Error | null) => void): void {
    this.#child.stdout!.destroy();
    this.#child.stdin!.destroy();
    // The stream is gone only once the process is (killed and reaped).
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) {
      done(e);
      return;
    }
    this.#child.once('exit', () => done(e));
    this.#child.kill('SIGKILL');
  }
}

let zstdPath: string | null | undefined;

/** The zstd binary in PATH, looked up once per process. */
export function zstdBinary(): string | undefined {
  if (zstdPath === undefined) {
    zstdPath = null;
    for (const dir of (process.env['PATH'] ?? '/usr/bin:/bin').split(':')) {
      if (!dir.startsWith('/')) continue; // a relative PATH entry depends on the working directory
      const candidate = path.join(dir, 'zstd');
      try {
        fs.accessSync(candidate, fs.constants.X_OK);
        if (fs.statSync(candidate).isFile()) {
          zstdPath = candidate;
          break;
        }
      } catch {
        // not here
      }
    }
  }
  return zstdPath ?? undefined;
}
