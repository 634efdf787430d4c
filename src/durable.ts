/**
 * Making writes durable, shared by the store and the deployments: fsync(2)
 * of one file or directory, and syncfs(2) of a whole filesystem for the
 * batched cases (a layer's objects, a checkout; see docs/durability.md).
 */
import { execFile } from 'node:child_process';
import { constants } from 'node:fs';
import { open, readdir } from 'node:fs/promises';
import path from 'node:path';

const { O_RDONLY, O_DIRECTORY } = constants;

/** fsync(2) of a directory: the names created, renamed or removed in it. */
export async function syncDir(dir: string): Promise<void> {
  await syncOpened(dir, O_RDONLY | O_DIRECTORY);
}

/** fsync(2) of a file's data and inode. */
export async function syncFile(file: string): Promise<void> {
  await syncOpened(file, O_RDONLY);
}

async function syncOpened(p: string, flags: number): Promise<void> {
  const fh = await open(p, flags);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * syncfs(2) of the filesystem holding `dir`, via coreutils' `sync -f` (Node
 * has no binding); false when that is unavailable, and the caller falls
 * back to fsyncs of its own.
 */
export function syncfs(dir: string): Promise<boolean> {
  return new Promise((resolve) => {
    execFile('sync', ['-f', dir], { timeout: 10 * 60_000 }, (err) => resolve(err === null));
  });
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
    for (const e of await readdir(d, { withFileTypes: true })) if (e.isDirectory()) await walk(path.join(d, e.name));
    await syncDir(d);
  };
  await walk(dir);
}
