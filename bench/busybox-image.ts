/**
 * A one-layer OCI layout holding the host's static busybox as /bin/busybox
 * (plus /bin/sleep -> busybox), for the page-cache sharing check: processes
 * started from two checkouts must map the same inode.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { pack } from 'tar-stream';

async function tarOf(entries: { name: string; mode: number; data?: Buffer; linkname?: string }[]): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  p.on('data', (c: unknown) => chunks.push(c as Buffer));
  const done = new Promise<void>((resolve, reject) => {
    p.once('end', resolve);
    p.once('error', reject);
  });
  const mtime = new Date(Date.UTC(2000, 0, 1));
  for (const e of entries) {
    if (e.linkname !== undefined) p.entry({ name: e.name, type: 'symlink', linkname: e.linkname, mode: e.mode, mtime, uid: 0, gid: 0 });
    else if (e.data === undefined) p.entry({ name: e.name, type: 'directory', mode: e.mode, mtime, uid: 0, gid: 0 });
    else p.entry({ name: e.name, mode: e.mode, mtime, uid: 0, gid: 0 }, e.data);
  }
  p.finalize();
  await done;
  return Buffer.concat(chunks);
}

async function blob(layout: string, data: Buffer): Promise<{ digest: string; size: number }> {
  const hex = createHash('sha256').update(data).digest('hex');
  await fs.writeFile(path.join(layout, 'blobs/sha256', hex), data);
  return { digest: `sha256:${hex}`, size: data.length };
}

/** Writes the layout; returns the image's manifest digest. */
export async function buildBusyboxImage(layout: string, tag: string, busybox: string, architecture: string): Promise<string> {
  await fs.mkdir(path.join(layout, 'blobs/sha256'), { recursive: true });
  await fs.writeFile(path.join(layout, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  const tar = await tarOf([
    { name: 'bin/', mode: 0o755 },
    { name: 'bin/busybox', mode: 0o755, data: await fs.readFile(busybox) },
    { name: 'bin/sleep', mode: 0o777, linkname: 'busybox' },
  ]);
  const layer = await blob(layout, gzipSync(tar));
  const diffId = `sha256:${createHash('sha256').update(tar).digest('hex')}`;
  const config = await blob(
    layout,
    Buffer.from(JSON.stringify({ created: '2000-01-01T00:00:00Z', architecture, os: 'linux', config: { Cmd: ['/bin/sleep', '3600'] }, rootfs: { type: 'layers', diff_ids: [diffId] } })),
  );
  const manifest = await blob(
    layout,
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...layer }],
      }),
    ),
  );
  await fs.writeFile(
    path.join(layout, 'index.json'),
    JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest, annotations: { 'org.opencontainers.image.ref.name': tag } }] }),
  );
  return manifest.digest;
}
