/** Small filesystem steps with crash-safe shapes: write to a temp name, fsync, rename. */
import fs from 'node:fs/promises';
import path from 'node:path';
import { syncDir, syncfs } from '../durable.ts';
import { errnoCode } from '../errors.ts';

export async function writeFileAtomic(file: string, data: string | Buffer, mode = 0o644): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.tmp-${process.pid}`);
  const handle = await fs.open(tmp, 'w', mode);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await fs.rename(tmp, file);
  await syncDir(path.dirname(file));
}

/** Point `link` at `target` atomically (a temp symlink renamed over it). */
export async function replaceSymlink(target: string, link: string): Promise<void> {
  const tmp = `${link}.tmp-${process.pid}`;
  await fs.rm(tmp, { force: true });
  await fs.symlink(target, tmp);
  await fs.rename(tmp, link);
  await syncDir(path.dirname(link));
}

/**
 * Make everything written on `dir`'s filesystem durable: one syncfs(2) (coreutils
 * `sync -f`) instead of an fsync per file and directory of a checkout (thousands
 * of hard links); without `sync -f`, every directory under `dir` is fsynced
 * (file data comes from store objects, which are durable already).
 */
export async function syncFilesystem(dir: string): Promise<void> {
  if (await syncfs(dir)) return;
  const walk = async (d: string): Promise<void> => {
    for (const e of await fs.readdir(d, { withFileTypes: true })) if (e.isDirectory()) await walk(path.join(d, e.name));
    await syncDir(d);
  };
  await walk(dir);
}

/** A directory's entry names, or none when the directory does not exist (other errors are thrown). */
export async function readdirIfExists(dir: string): Promise<string[]> {
  try {
    return await fs.readdir(dir);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return [];
    throw e;
  }
}

export async function exists(p: string): Promise<boolean> {
  try {
    await fs.lstat(p);
    return true;
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return false;
    throw e;
  }
}
