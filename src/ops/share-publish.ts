/**
 * Publishing one image onto a shared store (share/layout.ts), the one writer's
 * operation: the trust policy and pull (ops/pull.ts, into the share's own
 * store SHARE/store/, so objects land on the share), a hard-linked checkout
 * into SHARE/.staging/, the image's files and its scan there, one fsync of
 * the lot, one rename into images/ALG-HEX/; then the decision and, when
 * approved, the publisher's signature; the ref last.
 *
 * The share is the publisher's berth root: its lock (SHARE/lock) and
 * write-ahead intents (SHARE/intents/) are those of ops/locked.ts, so a pull
 * killed half-way is put right by the next publisher's recovery, and
 * SHARE/.staging/ is cleared under the lock (only a dead publisher leaves
 * anything there). Hosts never lock, write or look at either.
 *
 * Idempotent: publishing an image that is already there redoes only what
 * is missing (decision, signature, ref). An operator's decision is never
 * overridden by a later scan.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { crashPoint } from '../crashpoint.ts';
import { Paths } from '../deploy/paths.ts';
import { syncDir, syncFilesystem } from '../durable.ts';
import { BerthError } from '../errors.ts';
import { exists, ifExists, readdirIfExists, writeFileAtomic } from '../fsutil.ts';
import { parseDigest, type Digest } from '../image/digest.ts';
import type { DockerReference } from '../image/reference.ts';
import type { ScanPolicy, ScanReport } from '../scan/types.ts';
import { isJsonObject, parseStrictJson } from '../strict-json.ts';
import { encodeDecision, encodeImageEntry, readDecision, readImageEntry } from '../share/decision.ts';
import { SHARE_FORMAT, SHARE_VERSION, ShareLayout, type Decision, type ImageEntry } from '../share/layout.ts';
import { Store } from '../store/store.ts';
import { encodeSigstoreList } from '../store/images.ts';
import { parseImageReference } from '../transport/index.ts';
import type { OpContext } from './context.ts';
import { locked } from './locked.ts';
import { pullImage, type PullOptions } from './pull.ts';
import { signApproval, type ApprovalKey } from './share-sign.ts';

export interface PublishOptions extends PullOptions {
  /** The publisher's scan policy (scan/index.ts); an empty one still inventories and writes the SBOM. */
  scan: ScanPolicy;
  /** The publisher's signing key: approved images get a signature by it. */
  key?: ApprovalKey;
}

export interface PublishResult {
  reference: string;
  digest: Digest;
  /** false: the image was on the share already; only what was missing was redone */
  exploded: boolean;
  decision: Decision;
  /** the ref file, when the image was approved and pulled by tag */
  ref?: string;
  /** milliseconds: pull, checkout + files + fsync, scan */
  timings: { pullMs: number; explodeMs: number; scanMs: number };
}

const STAGING_PREFIX = 'img.';

/** The share's marker and directories (the marker first, never changed). Callers hold the share's lock. */
export async function openShare(root: string): Promise<ShareLayout> {
  const layout = new ShareLayout(root);
  await fs.mkdir(layout.root, { recursive: true, mode: 0o755 });
  const marker = await ifExists(fs.readFile(layout.marker, 'utf8'));
  if (marker === undefined) {
    await writeFileAtomic(layout.marker, `${JSON.stringify({ format: SHARE_FORMAT, version: SHARE_VERSION })}\n`);
  } else {
    let ok = false;
    try {
      const m = JSON.parse(marker) as { format?: unknown; version?: unknown };
      ok = m.format === SHARE_FORMAT && m.version === SHARE_VERSION;
    } catch {
      ok = false;
    }
    if (!ok) throw new BerthError('CONFIG_INVALID', `${layout.marker} is not a berth share of version ${SHARE_VERSION}`, { hint: 'give the publisher an empty directory or a share it made' });
  }
  for (const d of [layout.images, layout.refs, layout.lookaside, path.dirname(layout.decision('sha256:0' as Digest)), layout.staging]) {
    await fs.mkdir(d, { recursive: true, mode: 0o755 });
  }
  return layout;
}

/** Remove what a killed publisher left in SHARE/.staging/ (callers hold the lock, so nothing there is live). */
export async function clearShareStaging(layout: ShareLayout): Promise<string[]> {
  const removed: string[] = [];
  for (const e of await readdirIfExists(layout.staging)) {
    await fs.rm(path.join(layout.staging, e), { recursive: true, force: true });
    removed.push(e);
  }
  if (removed.length > 0) await syncDir(layout.staging);
  return removed;
}

/** The publisher's context on a share: the share is its berth root (lock, intents, store). */
export function shareContext(ctx: OpContext, share: string): OpContext {
  return { ...ctx, paths: new Paths(share) };
}

/** Run `fn` under the share's lock, on an opened share with no staged leftovers. */
export async function withShare<T>(ctx: OpContext, share: string, what: string, fn: (sctx: OpContext, layout: ShareLayout) => Promise<T>): Promise<T> {
  const sctx = shareContext(ctx, share);
  await fs.mkdir(sctx.paths.root, { recursive: true, mode: 0o755 });
  return locked(sctx, what, async () => {
    const layout = await openShare(share);
    for (const e of await clearShareStaging(layout)) ctx.report.warn(`removed ${e} from ${layout.staging}, left by a publisher that was killed`);
    return fn(sctx, layout);
  });
}

export function registryRef(image: string): DockerReference {
  const ref = parseImageReference(image);
  if (ref.transport !== 'docker') {
    throw new BerthError('USAGE', `the publisher publishes registry images; ${image} is not one`, { hint: 'write docker://HOST[:PORT]/REPO:TAG' });
  }
  return ref;
}

/** Publish `image` (docker://…) onto the share at `share`. */
export async function publishImage(ctx: OpContext, share: string, image: string, options: PublishOptions): Promise<PublishResult> {
  const ref = registryRef(image);
  return withShare(ctx, share, `publish ${image}`, (sctx, layout) => publishLocked(sctx, layout, ref, options));
}

async function publishLocked(ctx: OpContext, layout: ShareLayout, ref: DockerReference, options: PublishOptions): Promise<PublishResult> {
  const t0 = Date.now();
  const store = await Store.open(layout.storeRoot);
  const pulled = await pullImage(ctx, store, ref, options);
  const digest = pulled.manifestDigest;
  const resolved = pulled.referenceObject as DockerReference;
  // The reference hosts see: HOST/REPO:TAG (or @DIGEST), without the transport.
  const reference = `${resolved.registry}/${resolved.repository}${resolved.tag === undefined ? '' : `:${resolved.tag}`}${resolved.tag === undefined && resolved.digest !== undefined ? `@${resolved.digest}` : ''}`;
  const t1 = Date.now();

  let exploded = false;
  let scanMs = 0;
  if (!(await exists(layout.image(digest)))) {
    const staged = path.join(layout.staging, `${STAGING_PREFIX}${digest.replace(':', '-')}.${process.pid}.${randomBytes(4).toString('hex')}`);
    await fs.mkdir(staged, { mode: 0o755 });
    ctx.report.step(`Exploding ${digest} into ${layout.images}`);
    await store.checkout(digest, path.join(staged, 'rootfs'));
    crashPoint('publish.checked-out');
    const stored = await store.getImage(digest);
    if (stored === undefined) throw new BerthError('STORE_CORRUPT', `image ${digest} vanished from ${store.dir}`, { hint: 'run the publish again' });
    await fs.writeFile(path.join(staged, 'manifest.json'), stored.manifestBytes, { mode: 0o644 });
    await fs.writeFile(path.join(staged, 'config.json'), stored.configBytes, { mode: 0o644 });
    // The sigstore signatures pulled with the image travel with it (hosts re-check them under their own policy).
    if (stored.sigstoreSignatures.length > 0) await fs.writeFile(path.join(staged, 'sigstore.json'), encodeSigstoreList(stored.sigstoreSignatures), { mode: 0o644 });
    const entry: ImageEntry = { reference, digest, published: new Date().toISOString(), size: stored.size };
    await fs.writeFile(path.join(staged, 'image.json'), encodeImageEntry(entry), { mode: 0o644 });
    const s0 = Date.now();
    ctx.report.step(`Scanning ${digest}`);
    const { scanRootfs } = await import('../scan/index.ts');
    let report: Omit<ScanReport, 'sbom'>;
    try {
      const full = await scanRootfs(path.join(staged, 'rootfs'), options.scan, { name: reference, digest });
      const { sbom, ...rest } = full;
      await fs.writeFile(path.join(staged, 'sbom.cdx.json'), `${JSON.stringify(sbom, null, 2)}\n`, { mode: 0o644 });
      report = rest;
    } catch (e) {
      if (!(e instanceof BerthError)) throw e;
      // A scan that cannot finish never approves (fail closed); the image is kept, blocked, and says why.
      ctx.report.warn(`the scan of ${reference} failed: ${e.message}`);
      report = { digest, packages: [], findings: [], verdict: 'block', reasons: [`the scan failed: ${e.message}${e.hint === undefined ? '' : ` (${e.hint})`}; berth publish approve overrides`] };
    }
    scanMs = Date.now() - s0;
    await fs.writeFile(path.join(staged, 'scan.json'), `${JSON.stringify({ ...report, digest }, null, 2)}\n`, { mode: 0o644 });
    crashPoint('publish.staged');
    // Everything staged is durable before the one rename that makes it visible.
    await syncFilesystem(staged);
    await fs.rename(staged, layout.image(digest));
    await syncDir(layout.images);
    exploded = true;
    crashPoint('publish.renamed');
  } else {
    ctx.report.step(`${digest} is on the share already`);
  }
  const t2 = Date.now();

  let decision = await readDecision(layout.decision(digest));
  if (decision === undefined || decision.by !== 'operator') {
    const report = await readScanReport(layout, digest);
    // An image without its scan report was not published by this publisher: never approved.
    const approved = report !== undefined && report.verdict === 'approve';
    decision = {
      digest,
      reference,
      state: approved ? 'approved' : 'blocked',
      by: 'scan',
      reasons: report === undefined ? ['no scan report (scan.json) in the image'] : report.reasons,
      decided: decision?.decided ?? new Date().toISOString(),
      ...(decision?.signed === undefined ? {} : { signed: decision.signed }),
    };
  }
  decision = await applyDecision(ctx, layout, resolved, decision, options.key);
  let refFile: string | undefined;
  if (decision.state === 'approved' && resolved.tag !== undefined) {
    refFile = layout.ref(`${resolved.registry}/${resolved.repository}`, resolved.tag);
    await setRef(layout, refFile, digest);
  }
  ctx.report.step(`${reference}: ${decision.state}${decision.reasons.length > 0 ? ` (${decision.reasons.join('; ')})` : ''}`);
  return { reference, digest, exploded, decision, ...(refFile === undefined ? {} : { ref: refFile }), timings: { pullMs: t1 - t0, explodeMs: t2 - t1 - scanMs, scanMs } };
}

/** scan.json of a published image, or undefined when it was published without a scan. */
async function readScanReport(layout: ShareLayout, digest: Digest): Promise<Pick<ScanReport, 'verdict' | 'reasons' | 'findings'> | undefined> {
  const file = path.join(layout.image(digest), 'scan.json');
  const bytes = await ifExists(fs.readFile(file));
  if (bytes === undefined) return undefined;
  const bad = () => new BerthError('STORE_CORRUPT', `${file} is not a scan report`, { hint: 'remove the image directory and publish it again' });
  let v;
  try {
    v = parseStrictJson(bytes);
  } catch {
    throw bad();
  }
  if (!isJsonObject(v)) throw bad();
  const r = v as unknown as ScanReport;
  if ((r.verdict !== 'approve' && r.verdict !== 'block') || !Array.isArray(r.reasons) || !r.reasons.every((x) => typeof x === 'string') || !Array.isArray(r.findings)) throw bad();
  return r;
}

/**
 * Make the share say `decision` about its image: approved -> a signature by
 * the publisher's key for the reference (unless one was made already), then
 * the decision; blocked or pending -> every signature removed first (the
 * step hosts act on), then the decision.
 */
async function applyDecision(ctx: OpContext, layout: ShareLayout, ref: DockerReference, decision: Decision, key: ApprovalKey | undefined): Promise<Decision> {
  const identity = decision.reference;
  if (decision.state === 'approved') {
    const signed = decision.signed ?? [];
    if (key !== undefined && !signed.includes(identity)) {
      const file = await signApproval(layout, ref, decision.digest, identity, key);
      ctx.report.step(`Signed ${decision.digest} as ${identity}: ${file}`);
      decision = { ...decision, signed: [...signed, identity] };
      crashPoint('publish.signed');
    }
  } else {
    await removeSignatures(layout, ref, decision.digest);
    const { signed: _, ...rest } = decision;
    decision = rest;
  }
  await writeFileAtomic(layout.decision(decision.digest), encodeDecision(decision), { tempDir: layout.staging });
  crashPoint('publish.decided');
  return decision;
}

/** The look-aside directory of `digest` of `ref` on the share (REPO@ALG=HEX). */
export function signatureDir(layout: ShareLayout, ref: DockerReference, digest: Digest): string {
  return path.join(layout.lookaside, ref.repository + '@' + digest.replace(':', '='));
}

export async function removeSignatures(layout: ShareLayout, ref: DockerReference, digest: Digest): Promise<void> {
  const dir = signatureDir(layout, ref, digest);
  if (!(await exists(dir))) return;
  await fs.rm(dir, { recursive: true, force: true });
  await syncDir(path.dirname(dir));
}

/** The ref file: temp in .staging, fsync, rename, directory fsync. */
export async function setRef(layout: ShareLayout, file: string, digest: Digest): Promise<void> {
  const current = await ifExists(fs.readFile(file, 'utf8'));
  if (current === `${digest}\n`) return;
  await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o755 });
  await writeFileAtomic(file, `${digest}\n`, { tempDir: layout.staging });
  crashPoint('publish.ref-set');
}

/** Every image on the share with its entry and decision, newest first. */
export async function listPublished(layout: ShareLayout): Promise<{ entry: ImageEntry; decision: Decision | undefined }[]> {
  const out: { entry: ImageEntry; decision: Decision | undefined }[] = [];
  for (const name of await readdirIfExists(layout.images)) {
    const m = /^(sha256|sha512)-([0-9a-f]+)$/.exec(name);
    if (!m) continue;
    const digest = parseDigest(`${m[1]}:${m[2]}`);
    const entry = await readImageEntry(path.join(layout.image(digest), 'image.json'));
    if (entry === undefined) continue;
    out.push({ entry, decision: await readDecision(layout.decision(digest)) });
  }
  return out.sort((a, b) => b.entry.published.localeCompare(a.entry.published));
}
