/**
 * What the publisher says about the images on its share, after publishing:
 * `berth publish status` (every image with its decision and findings), an
 * operator's approve/block, and retention. All under the share's lock
 * (share-publish.ts withShare), all in the layout's order: signatures are
 * removed before anything else says "blocked", refs move last.
 *
 * Retention: per repository (HOST/REPO) the `keep` newest approved images
 * stay, and so does every image a ref names. Every other image is retired:
 * SHARE/retired/ALG-HEX.json says since when and until when it stays
 * (`grace`), since hosts cannot tell the publisher what they run; a host
 * running a retired image warns (berth status). When the grace is over the
 * image is removed: signatures first (no host accepts it anew), then
 * images/ALG-HEX in one rename out of sight, then its records; each step is
 * repeated by the next pass if a kill interrupts it.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { syncDir } from '../durable.ts';
import { BerthError } from '../errors.ts';
import { exists, ifExists, readdirIfExists, writeFileAtomic } from '../fsutil.ts';
import { isDigest, parseDigest, type Digest } from '../image/digest.ts';
import { parseDockerReference, type DockerReference } from '../image/reference.ts';
import type { Finding } from '../scan/types.ts';
import { encodeDecision, readDecision } from '../share/decision.ts';
import type { Decision, DecisionState, ImageEntry, Retirement, ShareLayout } from '../share/layout.ts';
import { isJsonObject, parseStrictJson } from '../strict-json.ts';
import { Store } from '../store/store.ts';
import type { OpContext } from './context.ts';
import { listPublished, removeSignatures, setRef, withShare } from './share-publish.ts';
import { signApproval, type ApprovalKey } from './share-sign.ts';

export interface StatusEntry {
  digest: Digest;
  reference: string;
  published: string;
  size: number;
  state: DecisionState | 'undecided';
  by: Decision['by'] | undefined;
  reasons: string[];
  /** the scan's findings that count (not allow-listed) */
  findings: Pick<Finding, 'id' | 'package' | 'installed' | 'severity' | 'fixed'>[];
  signed: string[];
  /** refs (HOST/REPO:TAG) that name this digest */
  refs: string[];
  retired?: { since: string; removeAfter: string };
}

/** HOST/REPO of a reference as image.json records it ("HOST/REPO:TAG" or "HOST/REPO@DIGEST"). */
function parseRecorded(reference: string): DockerReference {
  return parseDockerReference(reference);
}

const repoOf = (r: DockerReference) => `${r.registry}/${r.repository}`;

/** Every ref file of the share: "HOST/REPO:TAG" -> digest. */
async function readRefs(layout: ShareLayout): Promise<Map<string, Digest>> {
  const out = new Map<string, Digest>();
  const walk = async (dir: string, rel: string[]): Promise<void> => {
    for (const e of await readdirIfExists(dir)) {
      if (e.startsWith('.')) continue;
      const full = path.join(dir, e);
      const st = await fs.lstat(full);
      if (st.isDirectory()) await walk(full, [...rel, e]);
      else if (st.isFile() && rel.length >= 2 && st.size < 200) {
        const text = (await fs.readFile(full, 'utf8')).trim();
        if (isDigest(text)) out.set(`${rel.join('/')}:${e}`, parseDigest(text));
      }
    }
  };
  await walk(layout.refs, []);
  return out;
}

async function readFindings(layout: ShareLayout, digest: Digest): Promise<StatusEntry['findings']> {
  const bytes = await ifExists(fs.readFile(path.join(layout.image(digest), 'scan.json')));
  if (bytes === undefined) return [];
  let v;
  try {
    v = parseStrictJson(bytes);
  } catch {
    return [];
  }
  if (!isJsonObject(v) || !Array.isArray(v['findings'])) return [];
  const out: StatusEntry['findings'] = [];
  for (const f of v['findings'] as unknown as Finding[]) {
    if (typeof f !== 'object' || f === null || f.allowed === true || typeof f.id !== 'string') continue;
    out.push({ id: f.id, package: String(f.package), installed: String(f.installed), severity: f.severity, ...(typeof f.fixed === 'string' ? { fixed: f.fixed } : {}) });
  }
  return out;
}

export async function readRetirement(layout: ShareLayout, digest: Digest): Promise<Retirement | undefined> {
  const bytes = await ifExists(fs.readFile(layout.retired(digest)));
  if (bytes === undefined) return undefined;
  const v = parseStrictJson(bytes);
  if (!isJsonObject(v) || typeof v['retired'] !== 'string' || typeof v['removeAfter'] !== 'string' || typeof v['reference'] !== 'string') {
    throw new BerthError('STORE_CORRUPT', `${layout.retired(digest)} is not a retirement record`, { hint: 'remove it; the next retention pass writes it again' });
  }
  return { digest, reference: v['reference'], retired: v['retired'], removeAfter: v['removeAfter'] };
}

/** Every image on the share, newest first, with what the publisher decided and found. */
export async function shareStatus(layout: ShareLayout): Promise<StatusEntry[]> {
  const refs = await readRefs(layout);
  const out: StatusEntry[] = [];
  for (const { entry, decision } of await listPublished(layout)) {
    const retired = await readRetirement(layout, entry.digest);
    out.push({
      digest: entry.digest,
      reference: entry.reference,
      published: entry.published,
      size: entry.size,
      state: decision?.state ?? 'undecided',
      by: decision?.by,
      reasons: decision?.reasons ?? [],
      findings: await readFindings(layout, entry.digest),
      signed: decision?.signed ?? [],
      refs: [...refs].filter(([, d]) => d === entry.digest).map(([r]) => r).sort(),
      ...(retired === undefined ? {} : { retired: { since: retired.retired, removeAfter: retired.removeAfter } }),
    });
  }
  return out;
}

/** `berth publish status`: reading only, without the lock (the layout's order makes every read consistent). */
export async function publishStatus(share: string): Promise<StatusEntry[]> {
  const { ShareLayout } = await import('../share/layout.ts');
  const layout = new ShareLayout(share);
  if (!(await exists(layout.marker))) throw new BerthError('IMAGE_NOT_FOUND', `${share} is not a berth share (no berth-share.json)`, { hint: 'check --share or share= in the publisher configuration' });
  return shareStatus(layout);
}

/** The image an operator names: a digest, or a reference (its ref, else the newest image published from it). */
async function findImage(layout: ShareLayout, target: string): Promise<ImageEntry> {
  const all = await listPublished(layout);
  if (isDigest(target)) {
    const hit = all.find((i) => i.entry.digest === target);
    if (hit) return hit.entry;
  } else {
    let ref: DockerReference;
    try {
      ref = parseDockerReference(target.replace(/^docker:\/\//, ''));
    } catch {
      throw new BerthError('USAGE', `${target} is neither a digest nor HOST/REPO:TAG`, { hint: 'name an image as berth publish status lists it' });
    }
    const name = `${repoOf(ref)}${ref.tag === undefined ? '' : `:${ref.tag}`}`;
    if (ref.digest !== undefined) {
      const hit = all.find((i) => i.entry.digest === ref.digest);
      if (hit) return hit.entry;
    } else {
      const current = ref.tag === undefined ? undefined : await ifExists(fs.readFile(layout.ref(repoOf(ref), ref.tag), 'utf8'));
      const hit = all.find((i) => i.entry.digest === current?.trim()) ?? all.find((i) => i.entry.reference === name);
      if (hit) return hit.entry;
    }
  }
  throw new BerthError('IMAGE_NOT_FOUND', `${target} is not on the share`, { hint: 'berth publish status lists what is' });
}

/** The newest approved image published as `reference`, other than `except`. */
async function newestApproved(layout: ShareLayout, reference: string, except?: Digest): Promise<Digest | undefined> {
  for (const { entry, decision } of await listPublished(layout)) {
    if (entry.reference === reference && entry.digest !== except && decision?.state === 'approved' && !(await exists(layout.retired(entry.digest)))) return entry.digest;
  }
  return undefined;
}

/** Point the tag of `reference` at the newest approved image of it (or remove the ref when there is none). */
async function moveRef(layout: ShareLayout, reference: string, except?: Digest): Promise<Digest | undefined> {
  const ref = parseRecorded(reference);
  if (ref.tag === undefined) return undefined;
  const file = layout.ref(repoOf(ref), ref.tag);
  const target = await newestApproved(layout, reference, except);
  if (target !== undefined) {
    await setRef(layout, file, target);
    return target;
  }
  if (await exists(file)) {
    await fs.rm(file, { force: true });
    await syncDir(path.dirname(file));
  }
  return undefined;
}

export interface OperatorDecision {
  digest: Digest;
  reference: string;
  state: 'approved' | 'blocked';
  /** where the tag's ref points now (undefined: no ref) */
  ref: Digest | undefined;
}

/**
 * `berth publish approve|block TARGET`: the operator's decision, kept over
 * later scans. Block: the approval signatures go first, then the decision,
 * then the tag's ref moves back to the previous approved digest. Approve:
 * the signature (with `key`), the decision, then the ref moves to the
 * newest approved image of the tag.
 */
export async function operatorDecision(ctx: OpContext, share: string, target: string, state: 'approved' | 'blocked', key: ApprovalKey | undefined, reason: string | undefined): Promise<OperatorDecision> {
  if (state === 'approved' && key === undefined) {
    throw new BerthError('USAGE', 'approving needs the publisher\'s signing key', { hint: 'set key= in the publisher configuration or give --key' });
  }
  return withShare(ctx, share, `publish ${state === 'approved' ? 'approve' : 'block'} ${target}`, async (_sctx, layout) => {
    const entry = await findImage(layout, target);
    const ref = parseRecorded(entry.reference);
    const old = await readDecision(layout.decision(entry.digest));
    const reasons = [reason ?? `${state === 'approved' ? 'approved' : 'blocked'} by the operator`];
    let decision: Decision = { digest: entry.digest, reference: entry.reference, state, by: 'operator', reasons, decided: new Date().toISOString() };
    if (state === 'blocked') {
      await removeSignatures(layout, ref, entry.digest);
    } else {
      const signed = old?.state === 'approved' ? (old.signed ?? []) : [];
      if (!signed.includes(entry.reference)) {
        await signApproval(layout, ref, entry.digest, entry.reference, key!);
        signed.push(entry.reference);
      }
      decision = { ...decision, signed };
    }
    await writeFileAtomic(layout.decision(entry.digest), encodeDecision(decision), { tempDir: layout.staging });
    // Approved by hand: wanted again, whatever the retention said (the next pass decides anew).
    if (state === 'approved') await fs.rm(layout.retired(entry.digest), { force: true });
    const now = await moveRef(layout, entry.reference, state === 'blocked' ? entry.digest : undefined);
    ctx.report.step(`${entry.reference} ${entry.digest}: ${state} by the operator${ref.tag === undefined ? '' : `; ${ref.tag} -> ${now ?? '(no approved image)'}`}`);
    return { digest: entry.digest, reference: entry.reference, state, ref: now };
  });
}

export interface RetentionResult {
  retired: Digest[];
  removed: Digest[];
}

/**
 * Which images leave the retention: per repository, every decided image
 * older than its `keep`-th newest approved one, except what a ref names.
 * Pure. `images` newest first.
 */
export function chooseRetired(images: readonly { digest: Digest; repository: string; state: DecisionState | 'undecided' }[], keep: number, referenced: ReadonlySet<string>): Digest[] {
  const kept = new Map<string, number>();
  const out: Digest[] = [];
  for (const i of images) {
    const n = kept.get(i.repository) ?? 0;
    if (i.state === 'approved') {
      // A referenced image counts towards `keep` too: the ref is the newest approved one.
      kept.set(i.repository, n + 1);
      if (n < keep || referenced.has(i.digest)) continue;
    } else if (i.state === 'pending' || i.state === 'undecided' || referenced.has(i.digest) || n < keep) {
      // Not decided yet, named by a ref, or a blocked image newer than the N-th approved (an operator may still approve it).
      continue;
    }
    out.push(i.digest);
  }
  return out;
}

/** One retention pass (callers hold the share's lock): retire what left the last `keep`, remove what is past its grace. */
export async function applyRetention(ctx: OpContext, layout: ShareLayout, keep: number, graceSeconds: number, now = new Date()): Promise<RetentionResult> {
  const images = await listPublished(layout);
  const refs = await readRefs(layout);
  const choose = chooseRetired(
    images.map(({ entry, decision }) => ({ digest: entry.digest, repository: repoOf(parseRecorded(entry.reference)), state: decision?.state ?? 'undecided' })),
    keep,
    new Set(refs.values()),
  );
  const retiredNow: Digest[] = [];
  const chosen = new Set<string>(choose);
  for (const { entry } of images) {
    const record = await readRetirement(layout, entry.digest);
    if (!chosen.has(entry.digest)) {
      // Back in the retention (an operator approved it again, or a ref names it): no longer retired.
      if (record !== undefined) await fs.rm(layout.retired(entry.digest), { force: true });
      continue;
    }
    if (record !== undefined) continue;
    await fs.mkdir(path.dirname(layout.retired(entry.digest)), { recursive: true, mode: 0o755 });
    const r: Retirement = { digest: entry.digest, reference: entry.reference, retired: now.toISOString(), removeAfter: new Date(now.getTime() + graceSeconds * 1000).toISOString() };
    await writeFileAtomic(layout.retired(entry.digest), `${JSON.stringify(r, null, 2)}\n`, { tempDir: layout.staging });
    retiredNow.push(entry.digest);
    ctx.report.step(`retired ${entry.reference} ${entry.digest}: removed after ${r.removeAfter}`);
  }
  const removed: Digest[] = [];
  const store = await Store.open(layout.storeRoot);
  for (const name of await readdirIfExists(path.dirname(layout.retired('sha256:0' as Digest)))) {
    const m = /^(sha256|sha512)-([0-9a-f]+)\.json$/.exec(name);
    if (!m) continue;
    const digest = parseDigest(`${m[1]}:${m[2]}`);
    const record = await readRetirement(layout, digest);
    // The grace as configured now: shortening grace= applies to images retired before too.
    if (record === undefined || Date.parse(record.retired) + graceSeconds * 1000 > now.getTime()) continue;
    if ([...refs.values()].includes(digest)) continue;
    await removeImage(layout, store, record);
    removed.push(digest);
    ctx.report.step(`removed ${record.reference} ${digest} (retired ${record.retired})`);
  }
  if (removed.length > 0) {
    const remaining = new Set((await listPublished(layout)).map((i) => i.entry.digest as string));
    await store.gc(remaining);
  }
  return { retired: retiredNow, removed };
}

/** Remove a retired image, each step repeatable: signatures, the image (one rename out of sight), its records. */
async function removeImage(layout: ShareLayout, store: Store, record: Retirement): Promise<void> {
  await removeSignatures(layout, parseRecorded(record.reference), record.digest);
  const dir = layout.image(record.digest);
  if (await exists(dir)) {
    const gone = path.join(layout.staging, `gone.${path.basename(dir)}.${process.pid}`);
    await fs.rename(dir, gone);
    await syncDir(layout.images);
    await fs.rm(gone, { recursive: true, force: true });
  }
  await store.removeImage(record.digest);
  await fs.rm(layout.decision(record.digest), { force: true });
  await fs.rm(layout.retired(record.digest), { force: true });
  await syncDir(path.dirname(layout.decision(record.digest)));
  await syncDir(path.dirname(layout.retired(record.digest)));
}

/** `berth publish retention`-style pass under the lock, for the service and tests. */
export async function retention(ctx: OpContext, share: string, keep: number, graceSeconds: number): Promise<RetentionResult> {
  return withShare(ctx, share, 'publish retention', (_sctx, layout) => applyRetention(ctx, layout, keep, graceSeconds));
}
