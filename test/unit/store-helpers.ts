/**
 * Shared helpers for the store tests (test/unit/store-*.test.ts): tar
 * building, images from layer tars, sandboxes with a sentinel directory that
 * no layer may touch, and tree listings.
 */
import assert from 'node:assert/strict';
import { lstat, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pack } from 'tar-stream';
import type { Header } from 'tar-stream';
import { digestOf, type Digest } from '../../src/image/digest.ts';
import { isBerthError, type ErrorCode } from '../../src/errors.ts';
import type { Store } from '../../src/store/store.ts';

export type Spec = Partial<Header> & { name: string; data?: string | Buffer; pax?: Record<string, string> };

export const T1 = new Date('2020-01-02T03:04:05Z');

/** A tar built with tar-stream's pack(). */
export async function tarOf(specs: Spec[]): Promise<Buffer> {
  const p = pack();
  for (const { data, ...header } of specs) {
    const type = header.type ?? 'file';
    const h = { mtime: T1, mode: type === 'directory' ? 0o755 : type === 'symlink' ? 0o777 : 0o644, ...header, type };
    if (data !== undefined || type === 'file') p.entry(h, data ?? '');
    else p.entry(h);
  }
  p.finalize();
  const chunks: Buffer[] = [];
  for await (const c of p) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** A stream yielding `buf` in small chunks (as a verifying stream would), optionally failing at the end. */
export function streamOf(buf: Buffer, options: { chunk?: number; failAtEnd?: Error } = {}): Readable {
  const size = options.chunk ?? 700;
  let off = 0;
  return new Readable({
    read() {
      if (off < buf.length) {
        this.push(buf.subarray(off, off + size));
        off += size;
      } else if (options.failAtEnd) {
        this.destroy(options.failAtEnd);
      } else {
        this.push(null);
      }
    },
  });
}

export interface TestImage {
  manifestDigest: Digest;
  manifestBytes: Buffer;
  configBytes: Buffer;
  diffIds: Digest[];
}

/** Manifest + config for these uncompressed layer tars (no store involved). */
export function imageOf(tars: Buffer[], label = ''): TestImage {
  const diffIds = tars.map((t) => digestOf(t));
  const configBytes = Buffer.from(
    JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Labels: { test: label } }, rootfs: { type: 'layers', diff_ids: diffIds } }),
  );
  const manifestBytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digestOf(configBytes), size: configBytes.length },
      layers: tars.map((t, i) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: diffIds[i], size: t.length })),
    }),
  );
  return { manifestDigest: digestOf(manifestBytes), manifestBytes, configBytes, diffIds };
}

/** Import the layers (those not stored yet) and store the image. */
export async function storeImage(store: Store, tars: Buffer[], label = ''): Promise<TestImage> {
  const image = imageOf(tars, label);
  for (const [i, t] of tars.entries()) {
    if (!(await store.hasLayer(image.diffIds[i]!))) await store.importLayer(image.diffIds[i]!, streamOf(t));
  }
  await store.putImage({ ...image, signatures: [] });
  return image;
}

export interface Sandbox {
  base: string;
  /** The berth root (the store goes to root/store). */
  root: string;
  sentinel: string;
  /** A listing of the sentinel (names, modes, link counts, mtimes, contents) and of base: must never change. */
  snapshot: () => Promise<string>;
}

const bases: string[] = [];

/** A fresh temp dir with a berth root and a sentinel next to it. Removed by cleanup(). */
export async function sandbox(): Promise<Sandbox> {
  const base = await mkdtemp(join(tmpdir(), 'berth-store-'));
  bases.push(base);
  const root = join(base, 'root');
  const sentinel = join(base, 'sentinel');
  await mkdir(root);
  await mkdir(join(sentinel, 'etc'), { recursive: true });
  await writeFile(join(sentinel, 'canary'), 'untouched');
  await writeFile(join(sentinel, 'etc', 'shadow'), 'root:*:0:0');
  const snapshot = async (): Promise<string> => {
    // Checkouts (named co*) are expected next to the sentinel; anything else is not.
    const lines: string[] = [(await readdir(base)).filter((n) => !n.startsWith('co')).sort().join(',')];
    const walk = async (p: string): Promise<void> => {
      const st = await lstat(p);
      lines.push(`${p} ${st.mode.toString(8)} ${st.nlink} ${st.mtimeMs}`);
      if (st.isDirectory()) for (const c of (await readdir(p)).sort()) await walk(join(p, c));
      else if (st.isFile()) lines.push(await readFile(p, 'utf8'));
    };
    await walk(sentinel);
    return lines.join('\n');
  };
  return { base, root, sentinel, snapshot };
}

export async function cleanup(): Promise<void> {
  for (const b of bases.splice(0)) await rm(b, { recursive: true, force: true });
}

/** Relative path -> "type mode uid:gid [content|target]" for a whole tree. */
export async function listTree(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (rel: string): Promise<void> => {
    for (const name of (await readdir(join(dir, rel))).sort()) {
      const r = rel === '' ? name : `${rel}/${name}`;
      const p = join(dir, r);
      const st = await lstat(p);
      const meta = `${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid}`;
      if (st.isDirectory()) {
        out.set(r, `dir ${meta}`);
        await walk(r);
      } else if (st.isSymbolicLink()) {
        const { readlink } = await import('node:fs/promises');
        out.set(r, `symlink ${await readlink(p)}`);
      } else if (st.isFile()) {
        out.set(r, `file ${meta} ${(await readFile(p)).toString('utf8')}`);
      } else {
        out.set(r, 'other');
      }
    }
  };
  await walk('');
  return out;
}

/** Every regular file under `dir` (recursively). */
export async function allFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (p: string): Promise<void> => {
    for (const e of await readdir(p, { withFileTypes: true })) {
      const c = join(p, e.name);
      if (e.isDirectory()) await walk(c);
      else if (e.isFile()) out.push(c);
    }
  };
  await walk(dir);
  return out;
}

export async function countObjects(storeDir: string): Promise<number> {
  return (await allFiles(join(storeDir, 'objects'))).filter((f) => !f.endsWith('.xattrs')).length;
}

export async function rejectsWith(p: Promise<unknown>, code: ErrorCode, message?: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(isBerthError(e), `expected a BerthError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    assert.ok(e.hint, 'has a hint');
    if (message) assert.match(e.message, message);
    return true;
  });
}

export async function exists(p: string): Promise<boolean> {
  return (await lstat(p).catch(() => null)) !== null;
}
