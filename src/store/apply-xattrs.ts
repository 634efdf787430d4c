/**
 * Extended attributes on the store's objects, so that every hard-linked
 * checkout carries them: file capabilities above all (an image's `ping` with
 * cap_net_raw, a daemon's cap_net_bind_service). Node has no setxattr(2), so
 * attr's setfattr(1) sets them: one process per layer, for the few objects
 * that have any, on the staged files before their data is synced and they
 * are renamed into place.
 *
 * Only what an image may put on the host's inodes is applied: `user.*` and
 * `security.capability`. `trusted.*` is the host's root-only metadata,
 * `security.selinux` is the runtime's label to set, and IMA/EVM signatures or
 * ACLs from an image mean nothing here; those are skipped with a note. The
 * object key and the sidecar (objects.ts) keep every xattr, applied or not.
 * Like setuid bits, capabilities are safe to keep because berth's root is
 * 0700: host users cannot reach the files, only the containers run them.
 */
import { execFile } from 'node:child_process';
import { BerthError } from '../errors.ts';
import { sortedXattrs } from './objects.ts';

const APPLIED_NAME = /^(?:user\.[\x21-\x3c\x3e-\x7e]+|security\.capability)$/; // printable, no '='

export interface XattrTarget {
  /** A regular file berth just created (never a symlink: user.* cannot be set on one). */
  path: string;
  xattrs: ReadonlyMap<string, Buffer>;
}

/** VFS_CAP_REVISION_2 and _3 (with a root uid) magic numbers, and their sizes (linux/capability.h). */
const CAP_REVISIONS = new Map([
  [0x02000000, 20],
  [0x03000000, 24],
]);
const VFS_CAP_FLAGS_EFFECTIVE = 0x000001;

/**
 * Why a security.capability value is not one the kernel takes, or undefined.
 * Checked at import, so a malformed one is refused with the entry's name
 * rather than failing later on an anonymous staged file.
 */
export function capabilityProblem(value: Buffer): string | undefined {
  if (value.length < 4) return `it is ${value.length} bytes long`;
  const magic = value.readUInt32LE(0);
  const size = CAP_REVISIONS.get((magic & ~VFS_CAP_FLAGS_EFFECTIVE) >>> 0);
  if (size === undefined) return `revision 0x${magic.toString(16).padStart(8, '0')} is not 2 or 3`;
  if (value.length !== size) return `it is ${value.length} bytes long, not ${size}`;
  return undefined;
}

/** The names in `xattrs` that are not applied (for the caller's notes). */
export function unappliedXattrs(xattrs: ReadonlyMap<string, Buffer>): string[] {
  return [...xattrs.keys()].filter((name) => !APPLIED_NAME.test(name));
}

/**
 * Set the applicable xattrs of every target. Fails (MISSING_TOOL) when there
 * is something to set and setfattr is not installed; as an unprivileged user,
 * what only root may set (security.capability) is left out, as ownership is.
 */
export async function applyXattrs(targets: readonly XattrTarget[]): Promise<void> {
  let dump = '';
  for (const t of targets) {
    const lines = sortedXattrs(t.xattrs)
      .filter(([name]) => APPLIED_NAME.test(name))
      .map(([name, value]) => `${name}=0s${value.toString('base64')}\n`);
    // getfattr's dump format, which --restore reads; the path escaped as getfattr escapes it.
    if (lines.length > 0) dump += `# file: ${escapePath(t.path)}\n${lines.join('')}\n`;
  }
  if (dump === '') return;
  const failure = await setfattrRestore(dump);
  if (failure === undefined) return;
  if ('missing' in failure) {
    throw new BerthError('MISSING_TOOL', 'the image has files with extended attributes (file capabilities), and setfattr is not installed', {
      hint: 'install the attr package (apt-get install attr), then pull again',
    });
  }
  if (process.getuid?.() !== 0 && /Operation not permitted/.test(failure.stderr)) return;
  throw new BerthError('IO_ERROR', `cannot set extended attributes: ${failure.stderr.trim().split('\n')[0] ?? 'setfattr failed'}`, {
    hint: 'the store\'s filesystem must support user and security xattrs (ext4, xfs, btrfs do)',
  });
}

function setfattrRestore(dump: string): Promise<{ missing: true } | { stderr: string } | undefined> {
  return new Promise((resolve) => {
    const child = execFile('setfattr', ['--no-dereference', '--restore=-'], { timeout: 10 * 60_000 }, (err, _stdout, stderr) => {
      if (err === null) resolve(undefined);
      else if ((err as NodeJS.ErrnoException).code === 'ENOENT') resolve({ missing: true });
      else resolve({ stderr: String(stderr) || err.message });
    });
    child.stdin?.on('error', () => undefined); // a setfattr that died early: its exit says why
    child.stdin?.end(dump);
  });
}

/** getfattr's escaping: backslash, and control characters as three octal digits. */
function escapePath(path: string): string {
  return path.replace(/[\\\x00-\x1f\x7f]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);
}
