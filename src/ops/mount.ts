/**
 * berth mount IMAGE DIR / berth umount DIR: a read-only view of an image for
 * inspection. A checkout under ROOT/mounts/ (hard links, so cheap) is bind
 * mounted read-only on DIR; a small record remembers which checkout is where.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { BerthError } from '../errors.ts';
import { readdirIfExists, statIfExists } from '../fsutil.ts';
import { Store } from '../store/store.ts';
import type { OpContext } from './context.ts';
import { locked } from './locked.ts';
import { find } from './images.ts';
import { requireRoot } from './require-root.ts';

const run = promisify(execFile);

interface MountRecord {
  dir: string;
  image: string;
  digest: string;
  checkout: string;
}

export async function mountImage(ctx: OpContext, image: string, dir: string): Promise<MountRecord> {
  requireRoot('mount');
  const target = path.resolve(dir);
  const stat = await statIfExists(target);
  if (!stat?.isDirectory()) throw new BerthError('USAGE', `mount point ${target} is not a directory`, { hint: 'create it first' });
  // Linux stacks a bind mount on an existing one without complaint; the lower one (and its checkout) would be hidden and leak.
  if (await isMountPoint(await fs.realpath(target))) throw new BerthError('USAGE', `${target} is already a mount point`, { hint: 'berth umount it first, or choose another directory' });
  return locked(ctx, `mount ${image}`, async () => {
    const store = await Store.open(ctx.paths.root);
    const stored = await find(store, image);
    const mounts = path.join(ctx.paths.root, 'mounts');
    await fs.mkdir(mounts, { recursive: true, mode: 0o700 });
    const id = randomBytes(6).toString('hex');
    const checkout = path.join(mounts, id);
    await store.checkout(stored.manifestDigest, checkout);
    try {
      await run('mount', ['--bind', checkout, target]);
      await run('mount', ['-o', 'remount,bind,ro', target]).catch(async (e: unknown) => {
        await run('umount', [target]);
        throw e;
      });
    } catch (e) {
      await fs.rm(checkout, { recursive: true, force: true });
      throw new BerthError('IO_ERROR', `cannot mount on ${target}: ${(e as { stderr?: string }).stderr?.trim() || (e as Error).message}`, { hint: 'is it already a mount point?', cause: e });
    }
    const record: MountRecord = { dir: target, image, digest: stored.manifestDigest, checkout };
    await fs.writeFile(`${checkout}.json`, JSON.stringify(record));
    return record;
  });
}

export async function umountImage(ctx: OpContext, dir: string): Promise<MountRecord> {
  requireRoot('umount');
  const target = path.resolve(dir);
  return locked(ctx, `umount ${target}`, async () => {
    const mounts = path.join(ctx.paths.root, 'mounts');
    const names = await readdirIfExists(mounts);
    for (const name of names.filter((n) => n.endsWith('.json'))) {
      const record = JSON.parse(await fs.readFile(path.join(mounts, name), 'utf8')) as MountRecord;
      if (record.dir !== target) continue;
      await run('umount', [target]).catch((e: { stderr?: string }) => {
        if (!/not mounted/.test(e.stderr ?? '')) throw new BerthError('IO_ERROR', `cannot unmount ${target}: ${e.stderr?.trim()}`, { hint: 'is something using it? (fuser -m DIR)' });
      });
      await fs.rm(record.checkout, { recursive: true, force: true });
      await fs.rm(path.join(mounts, name), { force: true });
      return record;
    }
    throw new BerthError('NOT_INSTALLED', `${target} is not a berth mount`, { hint: 'berth mount IMAGE DIR makes one' });
  });
}

async function isMountPoint(dir: string): Promise<boolean> {
  const info = await fs.readFile('/proc/self/mountinfo', 'utf8');
  // Field 5 is the mount point, with space, tab, newline and backslash octal-escaped.
  const unescape = (p: string) => p.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  return info.split('\n').some((line) => line !== '' && unescape(line.split(' ')[4] ?? '') === dir);
}
