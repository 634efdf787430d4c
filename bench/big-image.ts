/**
 * A large, deterministic benchmark image as an OCI layout: `files` files
 * totalling about `bytes`, spread over three gzip layers (a base, a middle
 * and a small top layer), written by streaming (tar-stream -> gzip -> file,
 * hashed on the way) so generating 300 MB needs little memory.
 * Content is half pseudo-random, half repetitive text: it compresses about
 * like real binaries and libraries do (~2-3x).
 *
 * With `busybox` (the host's static busybox), the top layer also holds it
 * as /bin/busybox with /bin/sh and /bin/sleep linked to it, and the image's
 * command is a long-running one (LONG_RUNNING_CMD): a container of it can be
 * installed, started and looked at while it runs.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { pack } from 'tar-stream';

export interface BigImageSpec {
  files: number;
  bytes: number;
  architecture: string;
  /** A static busybox binary to put at /bin/busybox (top layer), with the mount points a runtime needs. */
  busybox?: string;
  /** Fully pseudo-random (incompressible) file content instead of half text. */
  random?: boolean;
}

/**
 * The command of an image built with busybox: sleeps until stopped. The
 * shell traps TERM because, as PID 1 of its namespace, a process without a
 * handler ignores systemd's SIGTERM and every stop would wait for the timeout.
 */
export const LONG_RUNNING_CMD = ['/bin/sh', '-c', "trap 'exit 0' TERM; sleep 86400 & wait"];

export interface BigImage {
  layout: string;
  tag: string;
  manifestDigest: string;
  layers: { digest: string; diffId: string; size: number; file: string }[];
}

function prng(seed: number) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

const TEXT = Buffer.from('lorem ipsum dolor sit amet, consectetur adipiscing elit; sed do eiusmod tempor incididunt ut labore\n');

function content(size: number, seed: number, random = false): Buffer {
  const rnd = prng(seed);
  const buf = Buffer.allocUnsafe(size);
  let i = 0;
  while (i < size) {
    const run = Math.min(size - i, 64 + (rnd() % 192));
    if (random || rnd() & 1) for (let j = 0; j < run; j++) buf[i + j] = rnd() & 0xff;
    else for (let j = 0; j < run; j++) buf[i + j] = TEXT[(i + j) % TEXT.length]!;
    i += run;
  }
  return buf;
}

/** Counts and hashes bytes flowing through. */
class Tap extends Transform {
  readonly hash = createHash('sha256');
  size = 0;
  override _transform(chunk: Buffer, _e: BufferEncoding, done: (e?: Error | null, c?: Buffer) => void) {
    this.hash.update(chunk);
    this.size += chunk.length;
    done(null, chunk);
  }
}

async function writeBlob(layout: string, data: Buffer | string): Promise<{ digest: string; size: number }> {
  const buf = Buffer.from(data);
  const hex = createHash('sha256').update(buf).digest('hex');
  await fs.writeFile(path.join(layout, 'blobs', 'sha256', hex), buf);
  return { digest: `sha256:${hex}`, size: buf.length };
}

export async function buildBigImage(layout: string, tag: string, spec: BigImageSpec): Promise<BigImage> {
  await fs.mkdir(path.join(layout, 'blobs', 'sha256'), { recursive: true });
  await fs.writeFile(path.join(layout, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  const shares = [0.7, 0.28, 0.02];
  const layers: BigImage['layers'] = [];
  let fileNo = 0;
  for (const [li, share] of shares.entries()) {
    const count = li === shares.length - 1 ? spec.files - fileNo : Math.round(spec.files * share);
    const avg = Math.max(1, Math.round((spec.bytes * share) / Math.max(1, count)));
    const p = pack();
    const tmp = path.join(layout, `layer-${li}.tmp`);
    const raw = new Tap();
    const gz = new Tap();
    const done = pipeline(p, raw, createGzip({ level: 6 }), gz, createWriteStream(tmp));
    const mtime = new Date(Date.UTC(2000, 0, 1));
    const dirs = new Set<string>();
    for (let i = 0; i < count; i++, fileNo++) {
      const dir = `usr/lib/pkg${Math.floor(fileNo / 100)}`;
      for (const d of ['usr', 'usr/lib', dir]) {
        if (!dirs.has(d)) {
          dirs.add(d);
          p.entry({ name: `${d}/`, type: 'directory', mode: 0o755, mtime, uid: 0, gid: 0 });
        }
      }
      const rnd = prng(fileNo + 1);
      const size = Math.max(1, Math.round(avg * (0.25 + (rnd() % 1000) / 666)));
      const data = content(size, fileNo + 7, spec.random);
      await new Promise<void>((resolve, reject) => p.entry({ name: `${dir}/f${fileNo}.so`, mode: fileNo % 10 === 0 ? 0o755 : 0o644, mtime, uid: 0, gid: 0 }, data, (e) => (e ? reject(e) : resolve())));
    }
    if (spec.busybox && li === shares.length - 1) {
      p.entry({ name: 'bin/', type: 'directory', mode: 0o755, mtime, uid: 0, gid: 0 });
      const binary = await fs.readFile(spec.busybox);
      await new Promise<void>((resolve, reject) => p.entry({ name: 'bin/busybox', mode: 0o755, mtime, uid: 0, gid: 0 }, binary, (e) => (e ? reject(e) : resolve())));
      for (const applet of ['sh', 'sleep']) p.entry({ name: `bin/${applet}`, type: 'symlink', linkname: 'busybox', mode: 0o777, mtime, uid: 0, gid: 0 });
      // A runtime cannot create mount points in a read-only rootfs (one on a shared store).
      for (const d of ['proc', 'sys', 'dev', 'run', 'tmp']) p.entry({ name: `${d}/`, type: 'directory', mode: 0o755, mtime, uid: 0, gid: 0 });
    }
    p.finalize();
    await done;
    const hex = gz.hash.digest('hex');
    const file = path.join(layout, 'blobs', 'sha256', hex);
    await fs.rename(tmp, file);
    layers.push({ digest: `sha256:${hex}`, diffId: `sha256:${raw.hash.digest('hex')}`, size: gz.size, file });
  }
  const config = await writeBlob(
    layout,
    JSON.stringify({
      created: '2000-01-01T00:00:00Z',
      architecture: spec.architecture,
      os: 'linux',
      config: spec.busybox ? { Cmd: LONG_RUNNING_CMD, Env: ['PATH=/bin'] } : { Cmd: ['/bin/true'] },
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    }),
  );
  const manifest = await writeBlob(
    layout,
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
      layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: l.digest, size: l.size })),
    }),
  );
  await fs.writeFile(
    path.join(layout, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest, annotations: { 'org.opencontainers.image.ref.name': tag } }],
    }),
  );
  return { layout, tag, manifestDigest: manifest.digest, layers };
}
