/**
 * Files an image installs on the host: /exports/hostfs/** copied onto the
 * host root, as atomic did, in two steps kept apart:
 *  - planHostFiles() (render/hostfs-plan.ts) is pure: destinations after manifest.json renameFiles
 *    (values substituted; a rename applies to a path prefix, so a renamed
 *    directory moves its content), content of installedFilesTemplate files
 *    substituted, every path checked, sha256 computed.
 *  - applyHostFiles() writes the plan below a host root: it never writes
 *    through a symlink on the host side, never overwrites an existing file
 *    (reported as kept), records what it created (files with their sha256,
 *    and directories), and undoes everything if a step fails.
 * removeHostFiles() deletes a recorded file only if its content is still
 * the recorded one, then the directories berth created if they are empty.
 *
 * Differences from atomic, on purpose: files are always copied (atomic's
 * useLinks hard-linked files under /usr to the checkout, which ties host
 * files to a deployment slot); setuid/setgid/sticky bits are dropped; files
 * are owned by root, not by the image's numeric owner; an installedFilesTemplate
 * entry matches a file by its hostfs path or by its renamed path (atomic
 * matched only the renamed one, which templates could not know in advance);
 * paths under systemd's and tmpfiles.d's directories are refused, since
 * berth renders and checks the unit and tmpfiles itself and a drop-in from
 * hostfs would bypass those checks.
 */
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { chmod, mkdir, open, readlink, rmdir, symlink, unlink } from 'node:fs/promises';
import path from 'node:path';
import { crashPoint } from '../crashpoint.ts';
import { syncDir } from '../durable.ts';
import { errnoCode } from '../errors.ts';
import { lstatIfExists } from '../fsutil.ts';
import { checkHostPath, sha256Hex, unsafeHostPath, type PlannedHostFile } from '../render/hostfs-plan.ts';

/** What was installed, for info.json and removeHostFiles(). */
export interface HostFileRecord {
  path: string;
  type: 'file' | 'symlink';
  /** sha256 (hex) of the content, or of the link target. */
  sha256: string;
}

export interface InstalledHostFiles {
  files: HostFileRecord[];
  /** Directories berth created, parents first. */
  dirs: string[];
}

export interface ApplyResult extends InstalledHostFiles {
  /** Planned files that already existed on the host and were left as they are. */
  kept: string[];
}

export interface RemoveResult {
  removed: string[];
  /** Files left in place because they were changed (or replaced) since berth installed them. */
  kept: string[];
  /** Recorded files that were already gone. */
  missing: string[];
}

export interface HostRootOptions {
  /** Where "/" is; tests use a temporary directory. Default "/". */
  hostRoot?: string;
}

function hostJoin(root: string, p: string): string {
  return path.join(root, ...p.split('/').filter((c) => c !== ''));
}

/**
 * Make sure every directory above `p` exists and is a real directory (not a
 * symlink), creating missing ones (recorded in `created`).
 */
async function ensureParents(root: string, p: string, created: string[]): Promise<void> {
  const parts = p.split('/').filter((c) => c !== '');
  let current = '';
  for (const part of parts.slice(0, -1)) {
    current = `${current}/${part}`;
    await ensureDir(root, current, 0o755, created);
  }
}

async function ensureDir(root: string, p: string, mode: number, created: string[]): Promise<void> {
  const full = hostJoin(root, p);
  const st = await lstatIfExists(full);
  if (st === undefined) {
    await mkdir(full, { mode });
    await chmod(full, mode); // not subject to the umask
    created.push(p);
    return;
  }
  if (st.isSymbolicLink()) throw unsafeHostPath(p, 'it is a symbolic link on the host; berth does not write through symlinks (use the real path in the image)');
  if (!st.isDirectory()) throw unsafeHostPath(p, 'it exists on the host and is not a directory');
}

/** Install the plan below `hostRoot`; on failure nothing of it is left. */
export async function applyHostFiles(plan: readonly PlannedHostFile[], options: HostRootOptions = {}): Promise<ApplyResult> {
  const root = options.hostRoot ?? '/';
  const result: ApplyResult = { files: [], dirs: [], kept: [] };
  try {
    for (const item of plan) {
      checkHostPath(item.path, 'planned host file');
      await ensureParents(root, item.path, result.dirs);
      const full = hostJoin(root, item.path);
      if (item.type === 'dir') {
        await ensureDir(root, item.path, item.mode, result.dirs);
      } else if (item.type === 'symlink') {
        try {
          await symlink(item.target, full);
        } catch (e) {
          if (errnoCode(e) !== 'EEXIST') throw e;
          result.kept.push(item.path);
          continue;
        }
        result.files.push({ path: item.path, type: 'symlink', sha256: item.sha256 });
      } else {
        // O_EXCL|O_NOFOLLOW: an existing file, or a symlink planted in its place, is never opened.
        let fh;
        try {
          fh = await open(full, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, item.mode);
        } catch (e) {
          if (errnoCode(e) !== 'EEXIST') throw e;
          result.kept.push(item.path);
          continue;
        }
        result.files.push({ path: item.path, type: 'file', sha256: item.sha256 });
        try {
          await fh.writeFile(item.content);
          await fh.chmod(item.mode);
          await fh.sync();
        } finally {
          await fh.close();
        }
      }
      crashPoint('deploy.hostfs-file');
    }
    // The new names durable too (each file's data was fsynced as it was written).
    const parents = new Set([...result.files.map((f) => path.dirname(f.path)), ...result.dirs.map((d) => path.dirname(d))]);
    for (const p of parents) await syncDir(hostJoin(root, p));
  } catch (e) {
    await undo(root, result);
    throw e;
  }
  return result;
}

/**
 * What applyHostFiles(plan) would create: the planned files and directories
 * (and missing parents) that do not exist yet. Recorded ahead of the apply,
 * it lets recovery remove a half-applied plan; removeHostFiles() takes it as
 * it is (files are removed only with their planned content, directories only
 * when empty).
 */
export async function absentHostFiles(plan: readonly PlannedHostFile[], options: HostRootOptions = {}): Promise<InstalledHostFiles> {
  const root = options.hostRoot ?? '/';
  const out: InstalledHostFiles = { files: [], dirs: [] };
  const seen = new Set<string>();
  for (const item of plan) {
    const parts = checkHostPath(item.path, 'planned host file').split('/').filter((c) => c !== '');
    let current = '';
    for (const [i, part] of parts.entries()) {
      current = `${current}/${part}`;
      const last = i === parts.length - 1;
      if (seen.has(current) || (last && item.type !== 'dir')) continue;
      seen.add(current);
      if ((await lstatIfExists(hostJoin(root, current))) === undefined) out.dirs.push(current);
    }
    if (item.type !== 'dir' && (await lstatIfExists(hostJoin(root, item.path))) === undefined) {
      out.files.push({ path: item.path, type: item.type, sha256: item.sha256 });
    }
  }
  return out;
}

async function undo(root: string, installed: InstalledHostFiles): Promise<void> {
  // Deliberate: undo after a failure is best effort; the first error is the one reported.
  for (const f of [...installed.files].reverse()) await unlink(hostJoin(root, f.path)).catch(() => undefined);
  for (const d of [...installed.dirs].reverse()) await rmdir(hostJoin(root, d)).catch(() => undefined);
}

/** Is every directory above `p` a real directory (no symlink, none missing)? */
async function parentsAreDirs(root: string, p: string): Promise<boolean> {
  const parts = p.split('/').filter((c) => c !== '');
  let current = root;
  for (const part of parts.slice(0, -1)) {
    current = path.join(current, part);
    const st = await lstatIfExists(current);
    if (st === undefined || !st.isDirectory()) return false;
  }
  return true;
}

async function fileSha256(full: string): Promise<string | undefined> {
  let fh;
  try {
    fh = await open(full, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (e) {
    if (errnoCode(e) === 'ELOOP' || errnoCode(e) === 'ENOENT') return undefined;
    throw e;
  }
  try {
    if (!(await fh.stat()).isFile()) return undefined;
    const hash = createHash('sha256');
    for await (const chunk of fh.createReadStream({ autoClose: false })) hash.update(chunk as Buffer);
    return hash.digest('hex');
  } finally {
    await fh.close();
  }
}

/** Remove what applyHostFiles() installed, keeping files changed since. */
export async function removeHostFiles(installed: InstalledHostFiles, options: HostRootOptions = {}): Promise<RemoveResult> {
  const root = options.hostRoot ?? '/';
  const result: RemoveResult = { removed: [], kept: [], missing: [] };
  for (const f of [...installed.files].reverse()) {
    const p = checkHostPath(f.path, 'recorded host file');
    const full = hostJoin(root, p);
    if (!(await parentsAreDirs(root, p))) {
      // A parent replaced by a symlink (or removed): never follow it to delete something else.
      if ((await lstatIfExists(full)) === undefined) result.missing.push(p);
      else result.kept.push(p);
      continue;
    }
    const st = await lstatIfExists(full);
    if (st === undefined) {
      result.missing.push(p);
      continue;
    }
    let same = false;
    if (f.type === 'symlink') same = st.isSymbolicLink() && sha256Hex(await readlink(full)) === f.sha256;
    else same = st.isFile() && (await fileSha256(full)) === f.sha256;
    if (!same) {
      result.kept.push(p);
      continue;
    }
    await unlink(full);
    result.removed.push(p);
  }
  const dirs = installed.dirs.map((d) => checkHostPath(d, 'recorded host directory')).sort((a, b) => b.split('/').length - a.split('/').length);
  for (const d of dirs) {
    try {
      await rmdir(hostJoin(root, d));
    } catch (e) {
      // Not empty (someone put files there, or a kept file), already gone, or no longer a directory: leave it.
      if (!['ENOTEMPTY', 'EEXIST', 'ENOENT', 'ENOTDIR'].includes(errnoCode(e) ?? '')) throw e;
    }
  }
  return result;
}
