/**
 * Garbage collection, mark and sweep in three tiers: images that are neither
 * kept nor referenced go; then layer records no remaining image lists; then
 * objects no remaining layer record uses (and orphans of interrupted
 * imports, and stale staging of dead processes).
 *
 * A remaining image or layer whose record cannot be read stops gc with
 * STORE_CORRUPT before anything below it is swept: without the record we
 * cannot know what it needs.
 *
 * Deletions are not fsynced: a crash can only bring back garbage, which the
 * next gc removes again.
 */
import { readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoCode } from '../errors.ts';
import { lstatIfExists } from '../fsutil.ts';
import type { Digest } from '../image/digest.ts';
import { clearStaleStaging } from './fsutil.ts';
import { corrupt, digestFileName, digestFromFileName, listImageDigests, listRefs, readImageRecord } from './images.ts';
import { readLayerRecord } from './layer-record.ts';
import type { StoreDirs } from './layout.ts';
import { XATTRS_SUFFIX } from './objects.ts';
import type { GcResult } from './types.ts';

export async function collectGarbage(d: StoreDirs, keep: ReadonlySet<string>): Promise<GcResult> {
  const result: GcResult = { images: 0, layers: 0, objects: 0, bytes: 0 };
  const referenced = new Set<string>((await listRefs(d.refs, true)).map((r) => r.digest));

  const keptLayers = new Set<string>();
  for (const digest of await listImageDigests(d.images)) {
    if (!keep.has(digest) && !referenced.has(digest)) {
      if (await unlinkIfThere(join(d.images, digestFileName(digest)))) result.images++;
      continue;
    }
    const image = await readImageRecord(d.images, digest);
    for (const diffId of image?.config.rootfs.diff_ids ?? []) keptLayers.add(diffId);
  }

  const keptObjects = new Set<string>();
  for (const name of await readdir(d.layers)) {
    const diffId = digestFromFileName(name);
    if (diffId === undefined || !keptLayers.has(diffId)) {
      if ((await unlinkIfThere(join(d.layers, name))) && diffId !== undefined) result.layers++;
      continue;
    }
    const record = await readLayer(d, diffId);
    for (const e of record?.records ?? []) if (e.type === 'file' || e.type === 'hardlink' || e.type === 'symlink') keptObjects.add(e.object);
  }

  for (const fan of await readdir(d.objects)) {
    const fanDir = join(d.objects, fan);
    let names: string[];
    try {
      names = await readdir(fanDir);
    } catch (e) {
      if (errnoCode(e) === 'ENOTDIR') continue; // not ours; verify reports it
      throw e;
    }
    for (const name of names) {
      const key = fan + (name.endsWith(XATTRS_SUFFIX) ? name.slice(0, -XATTRS_SUFFIX.length) : name);
      if (keptObjects.has(key)) continue;
      const file = join(fanDir, name);
      if (name.endsWith(XATTRS_SUFFIX)) {
        await unlinkIfThere(file);
        continue;
      }
      const size = (await lstatIfExists(file))?.size ?? 0;
      if (await unlinkIfThere(file)) {
        result.objects++;
        result.bytes += size;
      }
    }
  }
  await clearStaleStaging(d.tmp);
  return result;
}

async function readLayer(d: StoreDirs, diffId: Digest) {
  try {
    return await readLayerRecord(d.layers, diffId);
  } catch (e) {
    if (errnoCode(e) !== undefined) throw e;
    throw corrupt(`layer record ${diffId}`, e instanceof Error ? e.message : String(e));
  }
}

async function unlinkIfThere(file: string): Promise<boolean> {
  try {
    await unlink(file);
    return true;
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return false;
    throw e;
  }
}
