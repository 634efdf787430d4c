/**
 * Reading and writing signatures in a look-aside store (file:// or
 * http(s)://): signature-1, signature-2, … up to the first missing one.
 * A store that cannot be reached fails closed: the caller gets an error, never
 * "no signatures", since an attacker who can block the store must not be able
 * to turn a signature check into a different answer.
 */
import { randomBytes } from 'node:crypto';
import { link, mkdir, open, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BerthError, errnoCode } from '../errors.ts';
import type { Digest } from '../image/digest.ts';
import type { DockerReference } from '../image/reference.ts';
import { signatureUrl } from './registries-d.ts';
import { MAX_SIGNATURE_BYTES, MAX_SIGNATURES } from './limits.ts';
const HTTP_TIMEOUT_MS = 30_000;

export interface FetchedSignature {
  /** "signature-N", for messages. */
  readonly label: string;
  readonly location: string;
  /** The raw bytes; undefined when the signature was too large to read. */
  readonly untrustedBytes: Buffer | undefined;
}

/** Thrown when the store cannot be read: unreachable, 5xx, permission denied, … */
export class StoreUnavailable extends Error {
  override name = 'StoreUnavailable';
}

type ReadResult = { kind: 'missing' } | { kind: 'tooLarge' } | { kind: 'ok'; bytes: Buffer };

async function readFileCapped(file: string): Promise<ReadResult> {
  let fh;
  try {
    fh = await open(file, 'r');
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return { kind: 'missing' };
    throw new StoreUnavailable(`cannot open ${file}: ${(e as Error).message}`);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new StoreUnavailable(`${file} is not a regular file`);
    if (st.size > MAX_SIGNATURE_BYTES) return { kind: 'tooLarge' };
    // The size may change while reading: the cap is enforced on what is read.
    const chunks: Buffer[] = [];
    let n = 0;
    for (;;) {
      const buf = Buffer.alloc(Math.min(st.size, MAX_SIGNATURE_BYTES) + 1);
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      n += bytesRead;
      if (n > MAX_SIGNATURE_BYTES) return { kind: 'tooLarge' };
      chunks.push(buf.subarray(0, bytesRead));
    }
    return { kind: 'ok', bytes: Buffer.concat(chunks) };
  } catch (e) {
    if (e instanceof StoreUnavailable) throw e;
    throw new StoreUnavailable(`cannot read ${file}: ${(e as Error).message}`);
  } finally {
    await fh.close();
  }
}

async function readHttpCapped(url: URL): Promise<ReadResult> {
  let res: Response;
  try {
    res = await fetch(url, { redirect: 'follow', signal: AbortSignal.timeout(HTTP_TIMEOUT_MS) });
  } catch (e) {
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    throw new StoreUnavailable(`${url.origin} cannot be reached (${cause?.code ?? cause?.message ?? (e as Error).message})`);
  }
  if (res.status === 404) {
    await res.body?.cancel();
    return { kind: 'missing' };
  }
  if (res.status !== 200) {
    await res.body?.cancel();
    throw new StoreUnavailable(`${url.href} answered HTTP ${res.status}`);
  }
  const declared = Number(res.headers.get('content-length') ?? NaN);
  if (declared > MAX_SIGNATURE_BYTES) {
    await res.body?.cancel();
    return { kind: 'tooLarge' };
  }
  const chunks: Buffer[] = [];
  let n = 0;
  try {
    if (res.body !== null) {
      for await (const chunk of res.body) {
        n += (chunk as Uint8Array).length;
        if (n > MAX_SIGNATURE_BYTES) {
          await res.body.cancel().catch(() => undefined);
          return { kind: 'tooLarge' };
        }
        chunks.push(Buffer.from(chunk as Uint8Array));
      }
    }
  } catch (e) {
    throw new StoreUnavailable(`reading ${url.href} failed (${(e as Error).message})`);
  }
  return { kind: 'ok', bytes: Buffer.concat(chunks) };
}

function readSignature(url: URL): Promise<ReadResult> {
  if (url.protocol === 'file:') return readFileCapped(fileURLToPath(url));
  if (url.protocol === 'http:' || url.protocol === 'https:') return readHttpCapped(url);
  throw new StoreUnavailable(`signature store URL scheme ${url.protocol} is not supported (use file:, http: or https:)`);
}

/**
 * All signatures of manifest `digest` of `ref` in the store at `base`, in order,
 * at most MAX_SIGNATURES. Throws StoreUnavailable (or CONFIG_INVALID for a bad URL).
 */
export async function fetchSignatures(base: string, ref: DockerReference, digest: Digest): Promise<FetchedSignature[]> {
  const found: FetchedSignature[] = [];
  for (let i = 1; i <= MAX_SIGNATURES; i++) {
    const url = signatureUrl(base, ref, digest, i);
    const r = await readSignature(url);
    if (r.kind === 'missing') break;
    found.push({ label: `signature-${i}`, location: url.href, untrustedBytes: r.kind === 'ok' ? r.bytes : undefined });
  }
  return found;
}

/**
 * Adds `signature` as the next free signature-N in a file:// store; returns its path.
 * Exclusive and atomic: written to a temporary file and hard-linked into place,
 * so concurrent signers never overwrite each other and readers never see half a file.
 */
export async function writeSignature(base: string, ref: DockerReference, digest: Digest, signature: Uint8Array): Promise<string> {
  const first = signatureUrl(base, ref, digest, 1);
  if (first.protocol !== 'file:') {
    throw new BerthError('CONFIG_INVALID', `cannot write signatures to ${base}: only file:// stores are writable`, {
      hint: 'set lookaside-staging (or lookaside) to a file:/// URL in registries.d for this registry, and publish that directory',
    });
  }
  const dir = path.dirname(fileURLToPath(first));
  try {
    await mkdir(dir, { recursive: true, mode: 0o755 });
    const tmp = path.join(dir, `.signature-${process.pid}-${randomBytes(6).toString('hex')}.tmp`);
    await writeFile(tmp, signature, { mode: 0o644, flag: 'wx', flush: true });
    try {
      for (let i = 1; i <= MAX_SIGNATURES; i++) {
        const target = path.join(dir, `signature-${i}`);
        try {
          await link(tmp, target);
          return target;
        } catch (e) {
          if (errnoCode(e) !== 'EEXIST') throw e;
        }
      }
    } finally {
      await unlink(tmp).catch(() => undefined);
    }
  } catch (e) {
    throw new BerthError('IO_ERROR', `cannot write a signature into ${dir}: ${(e as Error).message}`, { cause: e });
  }
  throw new BerthError('CONFIG_INVALID', `${dir} already holds ${MAX_SIGNATURES} signatures, the most berth reads`, {
    hint: 'remove signatures that are no longer needed',
  });
}
