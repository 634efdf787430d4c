/**
 * Checking the store bottom-up: every object is re-hashed (content, mode,
 * owner, xattrs) against its name; every layer record must parse, match its
 * checksum and diff_id and find all its objects; every image record must
 * hash to its manifest digest, its config to the manifest's config digest,
 * and find all its layers.
 *
 * With repair, whatever fails is removed, and so is everything that needs
 * it (a layer missing an object, an image missing a layer), so the next pull
 * fetches and imports them again. References are kept: they say what the
 * user wants, and a pull by reference restores the image.
 *
 * Orphans (objects no layer uses, left by interrupted imports) are not
 * problems; gc removes them.
 */
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoCode } from '../errors.ts';
import { lstatIfExists } from '../fsutil.ts';
import { forEachLimited } from './fsutil.ts';
import { decodeImageRecord, digestFileName, digestFromFileName, listImageDigests, listRefs } from './images.ts';
import { decodeLayerRecord } from './layer-record.ts';
import type { StoreDirs } from './layout.ts';
import { hashObjectFile, XATTRS_SUFFIX } from './objects.ts';
import type { VerifyResult } from './types.ts';

const HASH_IN_FLIGHT = 8;

export async function verifyStore(d: StoreDirs, repair: boolean): Promise<VerifyResult> {
  const problems: string[] = [];
  let repaired = 0;
  const drop = async (path: string, recursive = false): Promise<void> => {
    if (!repair) return;
    await rm(path, { force: true, recursive });
    repaired++;
  };

  // Objects.
  const present = new Set<string>();
  const sidecars: { file: string; key: string }[] = [];
  const objects: { file: string; key: string }[] = [];
  for (const fan of (await readdir(d.objects)).sort()) {
    const fanDir = join(d.objects, fan);
    const st = await lstatIfExists(fanDir);
    if (!/^[0-9a-f]{2}$/.test(fan) || !st?.isDirectory()) {
      problems.push(`stray entry objects/${fan}`);
      await drop(fanDir, true);
      continue;
    }
    for (const name of (await readdir(fanDir)).sort()) {
      const file = join(fanDir, name);
      if (/^[0-9a-f]{62}$/.test(name)) objects.push({ file, key: fan + name });
      else if (/^[0-9a-f]{62}\.xattrs$/.test(name)) sidecars.push({ file, key: fan + name.slice(0, -XATTRS_SUFFIX.length) });
      else {
        problems.push(`stray entry objects/${fan}/${name}`);
        await drop(file, true);
      }
    }
  }
  const bad: { file: string; key: string; why: string }[] = [];
  await forEachLimited(objects, HASH_IN_FLIGHT, async (o) => {
    let why: string | undefined;
    try {
      const h = await hashObjectFile(o.file);
      if (h.kind === undefined) why = 'it is neither a regular file nor a symlink';
      else if (h.key !== o.key) why = 'its content or metadata changed';
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return; // removed meanwhile (another process' gc)
      why = e instanceof Error ? e.message : String(e);
    }
    if (why === undefined) present.add(o.key);
    else bad.push({ ...o, why });
  });
  const badKeys = new Set(bad.map((b) => b.key));
  for (const o of bad.sort((a, b) => a.key.localeCompare(b.key))) {
    problems.push(`object ${o.key} is corrupt: ${o.why}`);
    if (repair) await rm(o.file + XATTRS_SUFFIX, { force: true });
    await drop(o.file);
  }
  if (repair) {
    // Sidecars of objects that never appeared (interrupted import) or were dropped: harmless, tidy them.
    for (const s of sidecars) if (!present.has(s.key)) await rm(s.file, { force: true });
  }

  // Layer records.
  const layers = new Set<string>();
  let checkedLayers = 0;
  for (const name of (await readdir(d.layers)).sort()) {
    const file = join(d.layers, name);
    const diffId = digestFromFileName(name);
    if (diffId === undefined) {
      problems.push(`stray entry layers/${name}`);
      await drop(file, true);
      continue;
    }
    checkedLayers++;
    let keys: Set<string>;
    try {
      const record = decodeLayerRecord(await readFile(file, 'utf8'), diffId);
      keys = new Set();
      for (const e of record.records) if (e.type === 'file' || e.type === 'hardlink' || e.type === 'symlink') keys.add(e.object);
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') continue;
      problems.push(`layer record ${diffId} is damaged: ${e instanceof Error ? e.message : String(e)}`);
      await drop(file);
      continue;
    }
    const missing: string[] = [];
    for (const k of keys) {
      // An object committed after the scan (a concurrent import) is not missing.
      if (!present.has(k) && (badKeys.has(k) || (await lstatIfExists(join(d.objects, k.slice(0, 2), k.slice(2)))) === undefined)) missing.push(k);
    }
    if (missing.length > 0) {
      problems.push(`layer ${diffId} needs ${missing.length} missing or corrupt object(s), e.g. ${missing[0]}`);
      await drop(file);
      continue;
    }
    layers.add(diffId);
  }

  // Image records.
  const images = await listImageDigests(d.images);
  // Problems name an image by its references too: a digest alone says little to its user.
  const refs = await listRefs(d.refs).catch(() => []);
  const named = (digest: string) => {
    const names = refs.filter((r) => r.digest === digest).map((r) => r.reference);
    return names.length > 0 ? `image ${digest} (${names.join(', ')})` : `image ${digest}`;
  };
  for (const digest of images) {
    const file = join(d.images, digestFileName(digest));
    try {
      const image = decodeImageRecord(await readFile(file, 'utf8'), digest);
      const missing = image.config.rootfs.diff_ids.filter((l) => !layers.has(l));
      if (missing.length > 0) {
        problems.push(`${named(digest)} needs ${missing.length} missing or damaged layer(s), e.g. ${missing[0]}`);
        await drop(file);
      }
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') continue;
      problems.push(`${named(digest).replace(/^image /, 'image record ')} is damaged: ${e instanceof Error ? e.message : String(e)}`);
      await drop(file);
    }
  }

  return { ok: problems.length === 0, checked: { objects: objects.length, layers: checkedLayers, images: images.length }, problems, repaired };
}
