/**
 * What a host reading a share sees (share/layout.ts), for the publish crash
 * trials: the tag's ref, the image it names checked complete (image.json
 * names it, manifest.json hashes to it, and a digest of its whole rootfs
 * tree), whether the publisher's signature for it is there, and that every
 * image directory visible under images/ is complete. A kill may leave an
 * extra complete image that no ref names yet; never a partial one.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';

type Snapshot = Record<string, string>;

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/** A digest of a tree: every path with its type, mode, owner and content (or link target). */
async function treeHash(root: string): Promise<string> {
  const lines: string[] = [];
  const walk = async (dir: string, rel: string): Promise<void> => {
    const names = (await fs.readdir(dir)).sort();
    for (const n of names) {
      const full = path.join(dir, n);
      const st = await fs.lstat(full);
      const p = `${rel}/${n}`;
      const meta = `${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid}`;
      if (st.isDirectory()) {
        lines.push(`d ${p} ${meta}`);
        await walk(full, p);
      } else if (st.isSymbolicLink()) lines.push(`l ${p} ${meta} ${await fs.readlink(full)}`);
      else if (st.isFile()) lines.push(`f ${p} ${meta} ${sha256(await fs.readFile(full))}`);
      else lines.push(`? ${p}`);
    }
  };
  await walk(root, '');
  return `${lines.length} entries ${sha256(lines.join('\n')).slice(0, 16)}`;
}

/** Why images/DIR is not a complete image, or undefined when it is one. */
async function incomplete(share: string, dir: string): Promise<string | undefined> {
  const base = path.join(share, 'images', dir);
  const digest = dir.replace('-', ':');
  try {
    const entry = JSON.parse(await fs.readFile(path.join(base, 'image.json'), 'utf8')) as { digest?: string };
    if (entry.digest !== digest) return `${dir}/image.json names ${entry.digest}`;
    if (`sha256:${sha256(await fs.readFile(path.join(base, 'manifest.json')))}` !== digest) return `${dir}/manifest.json is not the manifest`;
    await fs.access(path.join(base, 'config.json'));
    if (!(await fs.stat(path.join(base, 'rootfs'))).isDirectory()) return `${dir}/rootfs is not a directory`;
  } catch (e) {
    return `${dir}: ${(e as Error).message}`;
  }
  return undefined;
}

/** The share as a host sees `refRel` (REGISTRY/REPO/TAG under refs/) and the repository's signatures (REPO under sigstore/). */
export async function shareView(share: string, refRel: string, repo: string): Promise<Snapshot> {
  const snap: Snapshot = {};
  const broken: string[] = [];
  for (const d of (await fs.readdir(path.join(share, 'images')).catch(() => [] as string[])).sort()) {
    const why = await incomplete(share, d);
    if (why !== undefined) broken.push(why);
  }
  snap['share: every visible image complete'] = broken.length === 0 ? 'yes' : `NO: ${broken.join('; ')}`;
  const ref = (await fs.readFile(path.join(share, 'refs', refRel), 'utf8').catch(() => undefined))?.trim();
  if (ref === undefined) {
    snap['share: ref'] = 'absent';
    return snap;
  }
  const dir = ref.replace(':', '-');
  const why = await incomplete(share, dir);
  snap['share: ref'] = why === undefined ? `${ref} complete, rootfs ${await treeHash(path.join(share, 'images', dir, 'rootfs'))}` : `${ref} INCOMPLETE: ${why}`;
  const sig = await fs.access(path.join(share, 'sigstore', `${repo}@${ref.replace(':', '=')}`, 'signature-1')).then(() => true, () => false);
  snap['share: ref signed'] = sig ? 'yes' : 'no';
  return snap;
}
