/**
 * Planning the files an image installs on the host (/exports/hostfs/**), the
 * pure half of host files (deploy/hostfs.ts applies the plan): destinations
 * after manifest.json renameFiles (values substituted; a rename applies to a
 * path prefix, so a renamed directory moves its content), content of
 * installedFilesTemplate files substituted, every path checked, sha256
 * computed. See deploy/hostfs.ts for the differences from atomic.
 */
import { createHash } from 'node:crypto';
import { BerthError } from '../errors.ts';
import type { HostfsEntry } from './exports.ts';
import { substituteLines } from './template.ts';

/** Host paths (and everything below) that hostfs may not write. */
export const PROTECTED_HOST_PATHS = [
  '/etc/systemd', '/run/systemd', '/usr/lib/systemd', '/lib/systemd', '/usr/local/lib/systemd',
  '/etc/tmpfiles.d', '/run/tmpfiles.d', '/usr/lib/tmpfiles.d', '/lib/tmpfiles.d', '/usr/local/lib/tmpfiles.d',
  '/proc', '/sys', '/dev',
];

export type PlannedHostFile =
  | { type: 'dir'; path: string; source: string; mode: number }
  | { type: 'file'; path: string; source: string; mode: number; content: Buffer; templated: boolean; sha256: string }
  | { type: 'symlink'; path: string; source: string; target: string; sha256: string };

export interface HostfsPlanInput {
  entries: readonly HostfsEntry[];
  renameFiles?: Readonly<Record<string, string>>;
  installedFilesTemplate?: readonly string[];
  values: Readonly<Record<string, string>>;
}

export interface HostfsPlan {
  plan: PlannedHostFile[];
  warnings: string[];
}

/** The UNSAFE_PATH error for a host path of an image. */
export function unsafeHostPath(what: string, why: string): BerthError {
  return new BerthError('UNSAFE_PATH', `${what}: ${why}`, { hint: 'the image is malformed or hostile, or a value (--set) makes a bad path' });
}

export function sha256Hex(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** A clean absolute host path ("/a/b"), or an error naming `what`. */
export function checkHostPath(p: string, what: string): string {
  if (!p.startsWith('/')) throw unsafeHostPath(what, `${JSON.stringify(p.slice(0, 200))} is not an absolute path`);
  if (/[\x00-\x1f\x7f]/.test(p)) throw unsafeHostPath(what, `${JSON.stringify(p.slice(0, 200))} contains a control character`);
  const parts = p.split('/').filter((c) => c !== '' && c !== '.');
  if (parts.includes('..')) throw unsafeHostPath(what, `${JSON.stringify(p.slice(0, 200))} contains ".."`);
  if (parts.length === 0) throw unsafeHostPath(what, 'it names the root directory');
  const clean = `/${parts.join('/')}`;
  const protectedBy = PROTECTED_HOST_PATHS.find((q) => clean === q || clean.startsWith(`${q}/`));
  if (protectedBy !== undefined) throw unsafeHostPath(what, `${clean} is below ${protectedBy}, which image files may not change`);
  return clean;
}

/** atomic's rename: every prefix of the path is looked up in turn, so renaming a directory moves its content. */
function renamePath(p: string, renames: ReadonlyMap<string, string>, used: Set<string>): string {
  let out = '';
  for (const part of p.split('/').slice(1)) {
    out = `${out}/${part}`;
    const renamed = renames.get(out);
    if (renamed !== undefined) {
      used.add(out);
      out = renamed;
    }
  }
  return out;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

export function planHostFiles(input: HostfsPlanInput): HostfsPlan {
  const warnings: string[] = [];
  const renames = new Map<string, string>();
  for (const [key, value] of Object.entries(input.renameFiles ?? {})) {
    const what = `manifest.json renameFiles[${JSON.stringify(key)}]`;
    const from = checkHostPath(key, what);
    renames.set(from, checkHostPath(substituteLines(value, input.values, what, 'error'), what));
  }
  const templates = new Set((input.installedFilesTemplate ?? []).map((p) => checkHostPath(p, 'manifest.json installedFilesTemplate')));
  const usedRenames = new Set<string>();
  const usedTemplates = new Set<string>();
  const byDest = new Map<string, PlannedHostFile>();

  for (const entry of input.entries) {
    const source = checkHostPath(entry.path, `/exports/hostfs${entry.path}`);
    const dest = checkHostPath(renamePath(source, renames, usedRenames), `/exports/hostfs${entry.path} renamed`);
    const other = byDest.get(dest);
    if (other !== undefined && !(other.type === 'dir' && entry.type === 'dir')) {
      throw unsafeHostPath(`/exports/hostfs${entry.path}`, `it goes to ${dest}, like /exports/hostfs${other.source}`);
    }
    let planned: PlannedHostFile;
    if (entry.type === 'dir') {
      planned = { type: 'dir', path: dest, source, mode: entry.mode & 0o777 };
    } else if (entry.type === 'symlink') {
      planned = { type: 'symlink', path: dest, source, target: entry.target, sha256: sha256Hex(entry.target) };
    } else {
      const templated = templates.has(source) || templates.has(dest);
      if (templated) usedTemplates.add(templates.has(source) ? source : dest);
      let content = entry.content;
      if (templated) {
        const what = `/exports/hostfs${source}`;
        let text: string;
        try {
          text = utf8.decode(content);
        } catch {
          throw new BerthError('USAGE', `${what} is listed in installedFilesTemplate but is not UTF-8 text`, { hint: 'only text files can be templates' });
        }
        content = Buffer.from(substituteLines(text, input.values, what, 'keep'), 'utf8');
      }
      if ((entry.mode & 0o7000) !== 0) warnings.push(`${dest}: setuid/setgid/sticky bits of the image's file are not installed`);
      planned = { type: 'file', path: dest, source, mode: entry.mode & 0o777, content, templated, sha256: sha256Hex(content) };
    }
    byDest.set(dest, planned);
  }
  for (const key of renames.keys()) if (!usedRenames.has(key)) warnings.push(`manifest.json renameFiles: ${key} is not in /exports/hostfs`);
  for (const t of templates) if (!usedTemplates.has(t)) warnings.push(`manifest.json installedFilesTemplate: ${t} is not a file in /exports/hostfs`);
  const plan = [...byDest.values()].sort((a, b) => comparePaths(a.path, b.path));
  return { plan, warnings };
}

/** Component-wise order: parents before children. */
function comparePaths(a: string, b: string): number {
  const as = a.split('/');
  const bs = b.split('/');
  for (let i = 0; i < Math.min(as.length, bs.length); i++) {
    if (as[i] !== bs[i]) return as[i]! < bs[i]! ? -1 : 1;
  }
  return as.length - bs.length;
}
