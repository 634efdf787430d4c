/** berth pull, images, inspect, rmi, prune, verify: the store as users see it. */
import fs from 'node:fs/promises';
import { statIfExists } from '../fsutil.ts';
import { BerthError, errnoCode } from '../errors.ts';
import { parseDigest } from '../image/digest.ts';
import { formatPlatform } from '../image/manifest.ts';
import { formatReference, parseImageReference } from '../transport/index.ts';
import { readInfo } from '../deploy/info.ts';
import type { Paths } from '../deploy/paths.ts';
import { Store } from '../store/store.ts';
import type { StoredImage, VerifyResult } from '../store/types.ts';
import type { DeploymentCheck } from './check-deployments.ts';
import type { OpContext } from './context.ts';
import { locked } from './locked.ts';
import { pullImage, type PullOptions, type PullResult } from './pull.ts';
import { requireRoot } from './require-root.ts';

export async function pull(ctx: OpContext, image: string, options: PullOptions): Promise<PullResult> {
  requireRoot('pull');
  const ref = parseImageReference(image);
  return locked(ctx, `pull ${image}`, async () => pullImage(ctx, await Store.open(ctx.paths.root), ref, options));
}

export interface ImageSummary {
  digest: string;
  references: string[];
  platform: string;
  layers: number;
  size: number;
  /** When the image was built (its config's `created`), if it says. */
  created: string | undefined;
  /** When it came into this store. */
  pulled: string;
  signatures: number;
  /** Sigstore signatures kept with it (cosign attachments, bundles). */
  sigstoreSignatures: number;
  /** Containers whose deployments use it. */
  usedBy: string[];
}

export async function images(ctx: OpContext): Promise<ImageSummary[]> {
  // Reading never creates the store.
  const store = await Store.openExisting(ctx.paths.root);
  if (store === undefined) return [];
  const used = await imagesInUse(ctx.paths);
  return (await store.listImages()).map((i) => summary(i, used));
}

/** A kept sigstore signature as inspect shows it: what it is, not whether it verifies (trust decides that on use). */
export interface SigstoreSummary {
  kind: 'cosign' | 'bundle';
  /** cosign: signed with a certificate (keyless) rather than a key. */
  keyless?: boolean;
  /** cosign: carries a Rekor SET. */
  rekor?: boolean;
  /** bundle: its media type. */
  mediaType?: string;
  bytes: number;
}

export interface ImageDetails extends ImageSummary {
  mediaType: string;
  sigstore: SigstoreSummary[];
  config: StoredImage['config'];
  layerDigests: { digest: string; diffId: string; size: number; mediaType: string }[];
}

export async function inspect(ctx: OpContext, image: string): Promise<ImageDetails> {
  const store = await Store.openExisting(ctx.paths.root);
  if (store === undefined) throw notFound(image);
  const stored = await find(store, image);
  const used = await imagesInUse(ctx.paths);
  return {
    ...summary(stored, used),
    mediaType: stored.manifest.mediaType,
    sigstore: stored.sigstoreSignatures.map((s): SigstoreSummary =>
      s.kind === 'bundle'
        ? { kind: 'bundle', mediaType: s.mediaType, bytes: s.bytes.length }
        : { kind: 'cosign', keyless: s.certificate !== undefined, rekor: s.rekorBundle !== undefined, bytes: s.payload.length },
    ),
    config: stored.config,
    layerDigests: stored.manifest.layers.map((l, i) => ({ digest: l.digest, diffId: stored.config.rootfs.diff_ids[i]!, size: l.size, mediaType: l.mediaType })),
  };
}

/** Remove a reference (or, given a digest, the image and all its references). Refuses images a container uses. */
export async function rmi(ctx: OpContext, image: string): Promise<{ removed: string[] }> {
  requireRoot('rmi');
  return locked(ctx, `rmi ${image}`, async () => {
    const store = await Store.open(ctx.paths.root);
    if (!isDigestArg(image)) {
      // A reference whose image is gone (verify --repair dropped it) must still be removable.
      const ref = canonical(image);
      const digest = await store.resolveReference(ref);
      if (digest !== undefined && (await store.getImage(digest)) === undefined) {
        await store.removeReference(ref);
        return { removed: [ref] };
      }
    }
    const { stored, byDigest } = await lookup(store, image);
    const used = await imagesInUse(ctx.paths);
    const users = used.get(stored.manifestDigest) ?? [];
    const refs = byDigest ? stored.references : [canonical(image)];
    const lastRef = stored.references.every((r) => refs.includes(r));
    if (lastRef && users.length > 0) {
      throw new BerthError('IMAGE_IN_USE', `image ${image} is used by ${users.join(', ')}`, { hint: `uninstall ${users.length > 1 ? 'them' : 'it'} first` });
    }
    for (const r of refs) await store.removeReference(r);
    if (byDigest || lastRef) await store.removeImage(stored.manifestDigest);
    return { removed: refs.length > 0 ? refs : [stored.manifestDigest] };
  });
}

export async function prune(ctx: OpContext) {
  requireRoot('prune');
  return locked(ctx, 'prune', async () => {
    const store = await Store.open(ctx.paths.root);
    const used = await imagesInUse(ctx.paths);
    return store.gc(new Set(used.keys()));
  });
}

export interface FullVerifyResult {
  store: VerifyResult;
  deployments: DeploymentCheck;
  /** What recovery put right first (interrupted operations), one line each. */
  recovered: string[];
}

/**
 * The store re-hashed, and the deployments checked. As root, interrupted
 * operations are recovered first (under the lock, which locked() does), so
 * what is checked is what the next operation would find.
 */
export async function verify(ctx: OpContext, repair: boolean): Promise<FullVerifyResult> {
  if (repair) requireRoot('verify --repair');
  const { checkDeployments } = await import('./check-deployments.ts');
  const { recover } = await import('./recover.ts');
  const asRoot = process.getuid?.() === 0;
  const state = async (): Promise<{ recovered: string[]; deployments: DeploymentCheck }> => {
    const recovered = asRoot ? (await recover(ctx)).actions : [];
    return { recovered, deployments: await checkDeployments(ctx) };
  };
  if (repair) {
    return locked(ctx, 'verify --repair', async () => ({ ...(await state()), store: await (await Store.open(ctx.paths.root)).verify({ repair }) }), { recover: false });
  }
  // Checking creates nothing: no root yet, nothing to check.
  if ((await statIfExists(ctx.paths.root)) === undefined) {
    return { store: { ok: true, checked: { objects: 0, layers: 0, images: 0 }, problems: [], repaired: 0 }, deployments: { ok: true, containers: 0, problems: [] }, recovered: [] };
  }
  // The deployment check is quick and needs a quiet moment; the store re-hash may take long and runs unlocked, as before.
  const checked = asRoot ? await locked(ctx, 'verify', state, { recover: false }) : await state();
  // As root, opening the store for real also clears staging a killed berth left (what recovery would do).
  const existing = await Store.openExisting(ctx.paths.root);
  const store = existing !== undefined && asRoot ? await Store.open(ctx.paths.root) : existing;
  return { store: store === undefined ? { ok: true, checked: { objects: 0, layers: 0, images: 0 }, problems: [], repaired: 0 } : await store.verify({ repair }), ...checked };
}

/** Manifest digest -> names of containers whose slots (either one) use it. */
export async function imagesInUse(paths: Paths): Promise<Map<string, string[]>> {
  const used = new Map<string, string[]>();
  let entries: string[];
  try {
    entries = await fs.readdir(paths.containers);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return used;
    throw e;
  }
  for (const entry of entries) {
    if (entry.startsWith('.') || !/\.[01]$/.test(entry)) continue;
    // Deliberate: a slot without a readable info.json holds no image (berth verify reports it).
    const info = await readInfo(`${paths.containers}/${entry}`).catch(() => undefined);
    if (!info) continue;
    used.set(info.manifestDigest, [...(used.get(info.manifestDigest) ?? []), info.name]);
  }
  return used;
}

/** The image config's `created`, when it is a string. */
function builtAt(i: StoredImage): string | undefined {
  // The parsed config keeps what berth runs by; `created` is in its bytes.
  let c = (i.config as { created?: unknown }).created;
  if (c === undefined) {
    try {
      c = (JSON.parse(i.configBytes.toString('utf8')) as { created?: unknown }).created;
    } catch {
      c = undefined;
    }
  }
  return typeof c === 'string' ? c : undefined;
}

function summary(i: StoredImage, used: Map<string, string[]>): ImageSummary {
  return {
    digest: i.manifestDigest,
    references: i.references,
    platform: formatPlatform({ os: i.config.os, architecture: i.config.architecture }),
    layers: i.manifest.layers.length,
    size: i.size,
    created: builtAt(i),
    pulled: i.created,
    signatures: i.signatures.length,
    sigstoreSignatures: i.sigstoreSignatures.length,
    usedBy: [...new Set(used.get(i.manifestDigest) ?? [])],
  };
}

/** Could be an image ID: a digest, or a prefix of one (3+ hex digits, as podman takes). */
function isDigestArg(image: string): boolean {
  return /^(sha256:[a-f0-9]{1,64}|[a-f0-9]{3,64})$/.test(image);
}

function canonical(image: string): string {
  return formatReference(parseImageReference(image));
}

/** An image by reference, full digest or unique ID (digest) prefix. */
export async function find(store: Store, image: string): Promise<StoredImage> {
  return (await lookup(store, image)).stored;
}

/**
 * `image` as a reference, else as an image ID: a full digest or a prefix of
 * one. A name that is also hex (a short name such as "cafe") is a reference
 * first. A prefix more than one image starts with is a conflict, naming them.
 */
export async function lookup(store: Store, image: string): Promise<{ stored: StoredImage; byDigest: boolean }> {
  if (!image.startsWith('sha256:') && !/^[a-f0-9]{64}$/.test(image)) {
    let ref: string | undefined;
    try {
      ref = canonical(image);
    } catch (e) {
      if (!isDigestArg(image)) throw e;
    }
    const digest = ref === undefined ? undefined : await store.resolveReference(ref);
    const stored = digest === undefined ? undefined : await store.getImage(digest);
    if (stored) return { stored, byDigest: false };
    if (!isDigestArg(image)) throw notFound(image);
  }
  if (!isDigestArg(image)) throw notFound(image);
  const hex = image.replace(/^sha256:/, '');
  const matches = (await store.listImages()).filter((i) => i.manifestDigest.slice(7).startsWith(hex));
  if (matches.length > 1) {
    const names = matches.map((i) => `${i.manifestDigest.slice(7, 19)}${i.references.length ? ` (${i.references.join(', ')})` : ''}`);
    throw new BerthError('AMBIGUOUS', `image ID ${image} matches ${matches.length} images: ${names.join('; ')}`, { hint: 'give more digits' });
  }
  if (matches[0]) return { stored: matches[0], byDigest: true };
  if (hex.length === 64) {
    const stored = await store.getImage(parseDigest(`sha256:${hex}`));
    if (stored) return { stored, byDigest: true };
  }
  throw notFound(image);
}

function notFound(image: string): BerthError {
  return new BerthError('IMAGE_NOT_FOUND', `image ${image} is not in the store`, { hint: 'berth images lists the stored images; berth pull fetches one' });
}
