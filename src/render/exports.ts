/**
 * Reading an image's /exports/ from its checked-out rootfs.
 *
 * The rootfs content is untrusted: "exports" or anything below it may be a
 * symlink aimed at the host ("/etc", "../../../root"), a FIFO that blocks a
 * reader, or a huge file. Every component is lstat'ed and a symlink is
 * refused (never followed, not even inside the rootfs); files are opened
 * with O_NOFOLLOW|O_NONBLOCK and fstat'ed to be the regular file that was
 * lstat'ed; sizes and counts are capped. The walk assumes nobody else
 * modifies the checkout meanwhile, which holds: it is berth's, read-only,
 * and private until the deployment is committed.
 *
 * Everything is read into memory once, so rendering and planning work on
 * data and never touch the untrusted tree again.
 */
import { lstat, readdir, readlink } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import path from 'node:path';
import { BerthError } from '../errors.ts';
import { describeFileType, FileRefusedError, lstatIfExists, readRegularFile } from '../fsutil.ts';
import { parseExportsManifest, type ExportsManifest } from './exports-manifest.ts';

/** An entry of /exports/hostfs; `path` is where it goes on the host before renameFiles ("/etc/foo.conf"). */
export type HostfsEntry =
  | { type: 'dir'; path: string; mode: number }
  | { type: 'file'; path: string; mode: number; content: Buffer }
  | { type: 'symlink'; path: string; target: string };

export interface ImageExports {
  /** /exports/config.json, used without substitution. */
  configJson?: string;
  /** /exports/config.json.template. */
  configTemplate?: string;
  serviceTemplate?: string;
  tmpfilesTemplate?: string;
  manifest?: ExportsManifest;
  /** Parents before children, sorted by path. */
  hostfs: HostfsEntry[];
  warnings: string[];
}

export interface ExportsLimits {
  /** Each template, config.json and manifest.json. */
  templateBytes: number;
  hostfsFileBytes: number;
  hostfsTotalBytes: number;
  hostfsEntries: number;
  hostfsDepth: number;
}

export const DEFAULT_EXPORTS_LIMITS: ExportsLimits = {
  templateBytes: 1024 * 1024,
  hostfsFileBytes: 64 * 1024 * 1024,
  hostfsTotalBytes: 256 * 1024 * 1024,
  hostfsEntries: 10_000,
  hostfsDepth: 32,
};

const TEXT_FILES = {
  configJson: 'config.json',
  configTemplate: 'config.json.template',
  serviceTemplate: 'service.template',
  tmpfilesTemplate: 'tmpfiles.template',
} as const;

const HOSTILE_HINT = 'the image is malformed or hostile; do not use it';

function unsafe(shown: string, why: string): BerthError {
  return new BerthError('UNSAFE_PATH', `unsafe path ${JSON.stringify(shown)} in image exports: ${why}`, { hint: HOSTILE_HINT });
}

function tooLarge(shown: string, what: string, cap: number): BerthError {
  return new BerthError('MANIFEST_INVALID', `${shown} in image exports is too large (${what}, the limit is ${cap})`, { hint: HOSTILE_HINT });
}

/** Read a regular file that was just lstat'ed, without following a symlink swapped in since. */
async function readRegular(file: string, st: Stats, shown: string, cap: number): Promise<Buffer> {
  if (!st.isFile()) throw unsafe(shown, `it is ${describeFileType(st)}`);
  if (st.size > cap) throw tooLarge(shown, `${st.size} bytes`, cap);
  try {
    return await readRegularFile(file, cap, st);
  } catch (e) {
    if (!(e instanceof FileRefusedError)) throw e;
    if (e.why === 'too-large') throw tooLarge(shown, e.detail, cap);
    if (e.why === 'changed') throw unsafe(shown, 'it changed while being read');
    throw unsafe(shown, `it is ${e.detail}`);
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function decodeText(bytes: Buffer, shown: string): string {
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw new BerthError('MANIFEST_INVALID', `${shown} in image exports is not UTF-8 text`, { hint: HOSTILE_HINT });
  }
  if (text.includes('\0')) throw new BerthError('MANIFEST_INVALID', `${shown} in image exports contains a NUL byte`, { hint: HOSTILE_HINT });
  return text;
}

async function readTextFile(dir: string, name: string, cap: number): Promise<string | undefined> {
  const file = path.join(dir, name);
  const shown = `/exports/${name}`;
  const st = await lstatIfExists(file);
  if (st === undefined) return undefined;
  if (st.isSymbolicLink()) throw unsafe(shown, 'it is a symbolic link');
  return decodeText(await readRegular(file, st, shown, cap), shown);
}

/** Read /exports/ of a checked-out rootfs. An image without /exports/ gives empty exports. */
export async function readExports(rootfs: string, limits: ExportsLimits = DEFAULT_EXPORTS_LIMITS): Promise<ImageExports> {
  const dir = path.join(rootfs, 'exports');
  const out: ImageExports = { hostfs: [], warnings: [] };
  const st = await lstatIfExists(dir);
  if (st === undefined) return out;
  if (!st.isDirectory()) throw unsafe('/exports', `it is ${describeFileType(st)}`);

  for (const [key, name] of Object.entries(TEXT_FILES) as [keyof typeof TEXT_FILES, string][]) {
    const text = await readTextFile(dir, name, limits.templateBytes);
    if (text !== undefined) out[key] = text;
  }
  const manifestText = await readTextFile(dir, 'manifest.json', limits.templateBytes);
  if (manifestText !== undefined) {
    const parsed = parseExportsManifest(manifestText);
    out.manifest = parsed.manifest;
    out.warnings.push(...parsed.warnings);
  }
  const hostfs = path.join(dir, 'hostfs');
  const hst = await lstatIfExists(hostfs);
  if (hst !== undefined) {
    if (!hst.isDirectory()) throw unsafe('/exports/hostfs', `it is ${describeFileType(hst)}`);
    await walkHostfs(hostfs, '', out.hostfs, limits, { bytes: 0 });
  }
  return out;
}

async function walkHostfs(dir: string, rel: string, out: HostfsEntry[], limits: ExportsLimits, total: { bytes: number }): Promise<void> {
  const depth = rel === '' ? 0 : rel.split('/').length;
  if (depth >= limits.hostfsDepth) throw tooLarge(`/exports/hostfs/${rel}`, `deeper than ${limits.hostfsDepth} levels`, limits.hostfsDepth);
  const names = (await readdir(dir)).sort();
  for (const name of names) {
    const childRel = rel === '' ? name : `${rel}/${name}`;
    const shown = `/exports/hostfs/${childRel}`;
    // Names become host paths and info.json entries: no control characters.
    if (/[\x00-\x1f\x7f]/.test(name)) throw unsafe(shown, 'its name contains a control character');
    if (out.length >= limits.hostfsEntries) throw tooLarge('/exports/hostfs', `more than ${limits.hostfsEntries} entries`, limits.hostfsEntries);
    const file = path.join(dir, name);
    const st = await lstat(file);
    const hostPath = `/${childRel}`;
    if (st.isDirectory()) {
      out.push({ type: 'dir', path: hostPath, mode: st.mode & 0o7777 });
      await walkHostfs(file, childRel, out, limits, total);
    } else if (st.isSymbolicLink()) {
      // Recorded as data (a link to create on the host), never followed here.
      const target = await readlinkChecked(file, shown);
      out.push({ type: 'symlink', path: hostPath, target });
    } else if (st.isFile()) {
      const content = await readRegular(file, st, shown, limits.hostfsFileBytes);
      total.bytes += content.length;
      if (total.bytes > limits.hostfsTotalBytes) throw tooLarge('/exports/hostfs', `more than ${limits.hostfsTotalBytes} bytes in all`, limits.hostfsTotalBytes);
      out.push({ type: 'file', path: hostPath, mode: st.mode & 0o7777, content });
    } else {
      throw unsafe(shown, `it is ${describeFileType(st)}`);
    }
  }
}

async function readlinkChecked(file: string, shown: string): Promise<string> {
  const target = await readlink(file);
  if (target === '' || /[\x00-\x1f\x7f]/.test(target) || Buffer.byteLength(target) > 4096) throw unsafe(shown, 'its link target is empty, too long or has control characters');
  return target;
}
