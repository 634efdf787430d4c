/**
 * A container's tmpfiles.d(5) file: /etc/tmpfiles.d/NAME.conf, applied with
 * systemd-tmpfiles --create (a real host also applies it at every boot).
 * Removal runs --remove first (which, by tmpfiles' rules, only empties what
 * the lines mark for removal: plain `d` directories, where state lives, stay).
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import { promisify } from 'node:util';
import { crashPoint } from '../crashpoint.ts';
import { BerthError } from '../errors.ts';
import { exists, writeFileAtomic } from '../fsutil.ts';

const run = promisify(execFile);

export async function installTmpfiles(file: string, text: string): Promise<void> {
  await fs.mkdir(new URL('file://' + file.slice(0, file.lastIndexOf('/'))).pathname, { recursive: true });
  await writeFileAtomic(file, text);
  crashPoint('deploy.tmpfiles-written');
  try {
    await run('systemd-tmpfiles', ['--create', file], { timeout: 30_000 });
  } catch (e) {
    const stderr = (e as { stderr?: string }).stderr?.trim();
    throw new BerthError('IO_ERROR', `systemd-tmpfiles --create ${file} failed${stderr ? `: ${stderr.split('\n')[0]}` : ''}`, {
      hint: 'check the image\'s tmpfiles.template',
      cause: e,
    });
  }
}

export async function removeTmpfiles(file: string): Promise<void> {
  if (!(await exists(file))) return;
  await run('systemd-tmpfiles', ['--remove', file], { timeout: 30_000 }).catch(() => {
    // Best effort: the file itself must go regardless.
  });
  await fs.rm(file, { force: true });
}
