/**
 * A host's side of the shared store (layout.ts): find an image in a share
 * mounted read-only, with bounded waits, and verify what can be verified.
 *
 * A hung FUSE or NFS mount blocks any file system call on it, and in Node
 * such a call occupies a libuv threadpool thread forever (and process exit
 * waits for nothing, but the call never returns). So every read of the
 * share's records goes through `probe()`: a child process (node itself, no
 * loader, empty environment) runs a fixed list of reads and lstats, bounded
 * in size, and prints the results; the parent kills it (SIGKILL: FUSE and NFS
 * waits are killable) and abandons it after `timeoutMs`. The share is then
 * "unavailable", never a hang.
 *
 * Only the container's rootfs itself is used directly (by the renderer,
 * reading /exports/, and by the runtime), after a probe has just answered.
 *
 * Readers never write, lock or create anything on the share: the probe opens
 * files O_RDONLY|O_NOFOLLOW|O_NONBLOCK and lstats directories, nothing else.
 *
 * Everything read is untrusted until verified here: the manifest against the
 * digest that names its directory, the config against the manifest's config
 * digest, image.json parsed strictly and naming the same digest, rootfs/ a
 * real directory. Signatures are returned untrusted: the caller's trust check
 * (under the host's own policy) decides, as for a registry.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { algorithmOf, digestOf, encodedOf, parseDigest, type Digest } from '../image/digest.ts';
import { MAX_CONFIG_BYTES, MAX_MANIFEST_BYTES, parseImageConfig, parseManifest, type ImageConfig, type ImageManifest } from '../image/manifest.ts';
import { isJsonObject, parseStrictJson } from '../strict-json.ts';
import { parseImageEntry } from './decision.ts';
import { SHARE_FORMAT, SHARE_VERSION, ShareLayout, type ImageEntry } from './layout.ts';

/** How long a probe of the share may take before the share counts as hung. */
export const DEFAULT_PROBE_TIMEOUT_MS = 10_000;
const MAX_MARKER_BYTES = 4096;
const MAX_REF_BYTES = 1024;
const MAX_ENTRY_BYTES = 1024 * 1024;
const MAX_SIGSTORE_BYTES = 16 * 1024 * 1024;

/** One step of a probe: read a regular file (at most `max` bytes) or lstat a path. */
type ProbeOp = { k: 'read'; p: string; max: number } | { k: 'stat'; p: string };
/** The child's answer per step. */
type ProbeResult =
  | { s: 'ok'; b: string }
  | { s: 'missing' }
  | { s: 'big' }
  | { s: 'notfile' }
  | { s: 'dir' | 'file' | 'link' | 'other' }
  | { s: 'err'; e: string };

/**
 * The child's program (CommonJS, node -e): the steps in order, each result
 * one JSON array element. Reads stop at max+1 bytes; a size over the limit is
 * "big", never read whole.
 */
const PROBE_PROGRAM = `'use strict';
const fs = require('fs');
const plan = JSON.parse(process.argv[1]);
const out = [];
for (const op of plan) {
  try {
    if (op.k === 'stat') {
      const st = fs.lstatSync(op.p);
      out.push({ s: st.isDirectory() ? 'dir' : st.isFile() ? 'file' : st.isSymbolicLink() ? 'link' : 'other' });
      continue;
    }
    const fd = fs.openSync(op.p, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
    try {
      const st = fs.fstatSync(fd);
      if (!st.isFile()) { out.push({ s: 'notfile' }); continue; }
      if (st.size > op.max) { out.push({ s: 'big' }); continue; }
      const buf = Buffer.alloc(op.max + 1);
      let n = 0, r;
      while (n <= op.max && (r = fs.readSync(fd, buf, n, buf.length - n, null)) > 0) n += r;
      out.push(n > op.max ? { s: 'big' } : { s: 'ok', b: buf.subarray(0, n).toString('base64') });
    } finally {
      fs.closeSync(fd);
    }
  } catch (e) {
    out.push(e && (e.code === 'ENOENT' || e.code === 'ENOTDIR') ? { s: 'missing' } : { s: 'err', e: String((e && e.code) || e) });
  }
}
process.stdout.write(JSON.stringify(out));
`;

/** Why a probe gave no answer: the share is hung or the probe could not run. */
export class ShareUnavailable extends Error {}

/**
 * Run `plan` in a child process; at most `timeoutMs`. Throws ShareUnavailable
 * on timeout (the child is killed and abandoned) or when the child fails.
 */
async function probe(plan: readonly ProbeOp[], timeoutMs: number): Promise<ProbeResult[]> {
  const maxOut = plan.reduce((n, op) => n + (op.k === 'read' ? Math.ceil(((op.max + 1) * 4) / 3) + 64 : 64), 1024);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', PROBE_PROGRAM, JSON.stringify(plan)], { stdio: ['ignore', 'pipe', 'pipe'], env: {} });
    const chunks: Buffer[] = [];
    let size = 0;
    let stderr = '';
    let settled = false;
    const finish = (f: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      f();
    };
    const timer = setTimeout(() => {
      finish(() => {
        // A process stuck in a FUSE/NFS wait dies when the wait ends; do not wait for it.
        child.kill('SIGKILL');
        child.unref();
        child.stdout.destroy();
        child.stderr.destroy();
        reject(new ShareUnavailable(`it did not answer within ${Math.round(timeoutMs / 1000)} s (hung?)`));
      });
    }, timeoutMs);
    child.stdout.on('data', (c: Buffer) => {
      size += c.length;
      if (size > maxOut) {
        child.kill('SIGKILL');
        finish(() => reject(new ShareUnavailable('the probe printed more than it may')));
        return;
      }
      chunks.push(c);
    });
    child.stderr.on('data', (c: Buffer) => {
      if (stderr.length < 2048) stderr += c.toString();
    });
    child.once('error', (e) => finish(() => reject(new ShareUnavailable(`the probe could not run (${e.message})`))));
    child.once('close', (code) => {
      finish(() => {
        if (code !== 0) {
          reject(new ShareUnavailable(`the probe failed (exit ${String(code)}: ${stderr.trim().split('\n').pop() ?? ''})`));
          return;
        }
        try {
          const v = JSON.parse(Buffer.concat(chunks).toString('utf8')) as ProbeResult[];
          if (!Array.isArray(v) || v.length !== plan.length) throw new Error('wrong length');
          resolve(v);
        } catch (e) {
          reject(new ShareUnavailable(`the probe's answer is unreadable (${(e as Error).message})`));
        }
      });
    });
  });
}

/** What a host asks the share for: a registry image by tag or by digest. */
export interface ShareQuery {
  registry: string;
  repository: string;
  tag?: string | undefined;
  digest?: Digest | undefined;
}

export interface ShareLimits {
  /** Signatures read per image (signature-1 … signature-N, up to the first missing). */
  maxSignatures: number;
  maxSignatureBytes: number;
}

/** An image the share holds, verified as far as the share's bytes go; signatures still untrusted. */
export interface SharedImage {
  share: string;
  digest: Digest;
  /** SHARE/images/ALG-HEX/rootfs: the read-only checkout containers run from */
  rootfs: string;
  entry: ImageEntry;
  manifestBytes: Buffer;
  configBytes: Buffer;
  manifest: ImageManifest;
  config: ImageConfig;
  /** The share's signatures for `digest` (its sigstore/), for the host's trust check. */
  untrustedSignatures: Buffer[];
  /** images/ALG-HEX/sigstore.json (the image's sigstore signatures, encoded list), when the share has one; untrusted. */
  untrustedSigstoreBytes?: Buffer;
}

export type ShareLookup =
  | { kind: 'found'; image: SharedImage }
  /** The share answered but does not hold the image (no ref, or the ref's image is gone). */
  | { kind: 'absent'; reason: string }
  /** Not mounted, not a share, hung, unreadable or inconsistent: the share cannot be used now. */
  | { kind: 'unavailable'; reason: string };

function bytesOf(r: ProbeResult | undefined, what: string): Buffer | undefined {
  if (r === undefined) throw new ShareUnavailable(`no answer for ${what}`);
  if (r.s === 'ok') return Buffer.from(r.b, 'base64');
  if (r.s === 'missing') return undefined;
  if (r.s === 'big') throw new ShareUnavailable(`${what} is larger than berth reads`);
  if (r.s === 'err') throw new ShareUnavailable(`reading ${what} failed (${r.e})`);
  throw new ShareUnavailable(`${what} is not a regular file`);
}

function checkMarker(r: ProbeResult | undefined, layout: ShareLayout): void {
  const bytes = bytesOf(r, layout.marker);
  if (bytes === undefined) throw new ShareUnavailable(`it has no ${path.basename(layout.marker)} (not mounted, or not a berth share)`);
  let ok = false;
  try {
    const v = parseStrictJson(bytes);
    ok = isJsonObject(v) && v['format'] === SHARE_FORMAT && v['version'] === SHARE_VERSION;
  } catch {
    ok = false;
  }
  if (!ok) throw new ShareUnavailable(`${layout.marker} is not a berth share of version ${SHARE_VERSION}`);
}

/** The look-aside file of signature N, as containers-registries.d(5) lays them out (trust/registries-d.ts signatureUrl). */
function signatureFile(layout: ShareLayout, repository: string, digest: Digest, n: number): string {
  return path.join(layout.lookaside, `${repository}@${algorithmOf(digest)}=${encodedOf(digest)}`, `signature-${n}`);
}

/**
 * Find `query` in the share at `root`. Never throws for the share's state:
 * a missing, hung or damaged share is `unavailable`, a share without the
 * image `absent`, each with a reason for a one-line message.
 */
export async function findSharedImage(root: string, query: ShareQuery, limits: ShareLimits, timeoutMs = DEFAULT_PROBE_TIMEOUT_MS): Promise<ShareLookup> {
  const layout = new ShareLayout(root);
  const registryRepo = `${query.registry}/${query.repository}`;
  try {
    // 1. the marker, and the ref when asked by tag
    const refFile = query.digest === undefined && query.tag !== undefined ? layout.ref(registryRepo, query.tag) : undefined;
    const first = await probe(
      [{ k: 'read', p: layout.marker, max: MAX_MARKER_BYTES }, ...(refFile === undefined ? [] : [{ k: 'read' as const, p: refFile, max: MAX_REF_BYTES }])],
      timeoutMs,
    );
    checkMarker(first[0], layout);
    let digest = query.digest;
    if (digest === undefined) {
      if (refFile === undefined) return { kind: 'absent', reason: `${registryRepo} names neither a tag nor a digest` };
      const ref = bytesOf(first[1], refFile);
      if (ref === undefined) return { kind: 'absent', reason: `it has no approved ${registryRepo}:${query.tag}` };
      try {
        digest = parseDigest(ref.toString('utf8').trim(), refFile);
      } catch {
        throw new ShareUnavailable(`${refFile} does not hold a digest`);
      }
    }
    // 2. the image's files, the rootfs, the signatures
    const dir = layout.image(digest);
    const plan: ProbeOp[] = [
      { k: 'read', p: path.join(dir, 'image.json'), max: MAX_ENTRY_BYTES },
      { k: 'read', p: path.join(dir, 'manifest.json'), max: MAX_MANIFEST_BYTES },
      { k: 'read', p: path.join(dir, 'config.json'), max: MAX_CONFIG_BYTES },
      { k: 'stat', p: layout.rootfs(digest) },
      { k: 'read', p: path.join(dir, 'sigstore.json'), max: MAX_SIGSTORE_BYTES },
    ];
    for (let n = 1; n <= limits.maxSignatures; n++) plan.push({ k: 'read', p: signatureFile(layout, query.repository, digest, n), max: limits.maxSignatureBytes });
    const r = await probe(plan, timeoutMs);
    const entryBytes = bytesOf(r[0], `${dir}/image.json`);
    if (entryBytes === undefined) return { kind: 'absent', reason: `it no longer holds ${digest}` };
    const manifestBytes = bytesOf(r[1], `${dir}/manifest.json`);
    const configBytes = bytesOf(r[2], `${dir}/config.json`);
    if (manifestBytes === undefined || configBytes === undefined) throw new ShareUnavailable(`${dir} is incomplete (no manifest.json or config.json)`);
    if (r[3]?.s !== 'dir') throw new ShareUnavailable(`${layout.rootfs(digest)} is not a directory`);
    const untrustedSigstoreBytes = bytesOf(r[4], `${dir}/sigstore.json`);
    const untrustedSignatures: Buffer[] = [];
    for (let n = 1; n <= limits.maxSignatures; n++) {
      const sig = bytesOf(r[4 + n], `signature-${n} of ${digest}`);
      if (sig === undefined) break;
      untrustedSignatures.push(sig);
    }
    const image = verify(layout, digest, entryBytes, manifestBytes, configBytes, untrustedSignatures);
    return { kind: 'found', image: untrustedSigstoreBytes === undefined ? image : { ...image, untrustedSigstoreBytes } };
  } catch (e) {
    if (e instanceof ShareUnavailable) return { kind: 'unavailable', reason: e.message };
    // Parse and digest failures: the share's bytes are wrong, so the share cannot be used.
    return { kind: 'unavailable', reason: (e as Error).message };
  }
}

function verify(layout: ShareLayout, digest: Digest, entryBytes: Buffer, manifestBytes: Buffer, configBytes: Buffer, untrustedSignatures: Buffer[]): SharedImage {
  const dir = layout.image(digest);
  const actual = digestOf(manifestBytes, algorithmOf(digest));
  if (actual !== digest) throw new ShareUnavailable(`${dir}/manifest.json has digest ${actual}, not ${digest}`);
  const manifest = parseManifest(manifestBytes, undefined, `${dir}/manifest.json`);
  if (manifest.kind !== 'manifest') throw new ShareUnavailable(`${dir}/manifest.json is an index, not an image manifest`);
  const configDigest = digestOf(configBytes, algorithmOf(manifest.config.digest));
  if (configDigest !== manifest.config.digest) throw new ShareUnavailable(`${dir}/config.json has digest ${configDigest}, the manifest names ${manifest.config.digest}`);
  const config = parseImageConfig(configBytes, `${dir}/config.json`);
  const entry = parseImageEntry(entryBytes, `${dir}/image.json`);
  if (entry.digest !== digest) throw new ShareUnavailable(`${dir}/image.json names ${entry.digest}`);
  return { share: layout.root, digest, rootfs: layout.rootfs(digest), entry, manifestBytes, configBytes, manifest, config, untrustedSignatures };
}

/**
 * Does the share still hold image `digest`? For `berth status` (retention
 * may remove images the host still runs): 'yes', 'no', or why nobody knows.
 */
export async function shareHolds(root: string, digest: Digest, timeoutMs = DEFAULT_PROBE_TIMEOUT_MS): Promise<{ holds: boolean } | { unknown: string }> {
  const layout = new ShareLayout(root);
  try {
    const [marker, rootfs] = await probe([{ k: 'read', p: layout.marker, max: MAX_MARKER_BYTES }, { k: 'stat', p: layout.rootfs(digest) }], timeoutMs);
    checkMarker(marker, layout);
    if (rootfs?.s === 'err') return { unknown: `reading ${layout.rootfs(digest)} failed (${rootfs.e})` };
    return { holds: rootfs?.s === 'dir' };
  } catch (e) {
    return { unknown: (e as Error).message };
  }
}

/**
 * Which of `paths` (absolute, inside the container) are missing from the
 * share's rootfs: runc cannot create mount points in a read-only rootfs, so a
 * deployment whose mounts need one cannot run from the share.
 */
export async function missingInRootfs(rootfs: string, paths: readonly string[], timeoutMs = DEFAULT_PROBE_TIMEOUT_MS): Promise<string[]> {
  if (paths.length === 0) return [];
  const r = await probe(
    paths.map((p) => ({ k: 'stat' as const, p: path.join(rootfs, ...p.split('/').filter((c) => c !== '' && c !== '.' && c !== '..')) })),
    timeoutMs,
  );
  return paths.filter((_, i) => r[i]?.s === 'missing');
}
