/**
 * berth scan: scan a stored image (checked out into the store's staging for
 * the scan, then removed) or a directory, under a scan policy. The scanning
 * itself is scan/ (scanRootfs); this adds finding the image and its checkout.
 */
import fs from 'node:fs/promises';
import { BerthError } from '../errors.ts';
import { writeFileAtomic } from '../fsutil.ts';
import { scanRootfs, type ScanPolicy, type ScanReport } from '../scan/index.ts';
import { Store } from '../store/store.ts';
import type { OpContext } from './context.ts';
import { find } from './images.ts';
import { locked } from './locked.ts';
import { requireRoot } from './require-root.ts';

export type ScanTarget = { image: string } | { rootfs: string };

export interface ScanResult extends ScanReport {
  /** what was scanned: the image as given, or the directory */
  target: string;
}

export async function scan(ctx: OpContext, target: ScanTarget, policy: ScanPolicy): Promise<ScanResult> {
  if ('rootfs' in target) {
    const st = await fs.stat(target.rootfs).catch(() => undefined);
    if (!st?.isDirectory()) throw new BerthError('USAGE', `--rootfs ${target.rootfs} is not a directory`, { hint: 'give the root directory of an unpacked image' });
    ctx.report.step(`Scanning ${target.rootfs}`);
    return { target: target.rootfs, ...(await scanRootfs(target.rootfs, policy, { name: target.rootfs })) };
  }
  requireRoot('scan');
  const store = await Store.openExisting(ctx.paths.root);
  if (store === undefined) throw new BerthError('IMAGE_NOT_FOUND', `image ${target.image} is not in the store`, { hint: 'berth pull it first' });
  // The checkout is taken under the state lock (so prune cannot collect the image meanwhile); the scan,
  // which may run slow hooks, is not, so it holds up no other berth command.
  const { stored, checkout } = await locked(ctx, `scan ${target.image}`, async () => {
    const stored = await find(store, target.image);
    ctx.report.step(`Checking out ${stored.manifestDigest}`);
    return { stored, checkout: await store.checkoutTemporary(stored.manifestDigest) };
  });
  try {
    ctx.report.step(`Scanning ${target.image}`);
    const name = stored.references[0] ?? target.image;
    return { target: target.image, ...(await scanRootfs(checkout.rootfs, policy, { name, digest: stored.manifestDigest })) };
  } finally {
    await checkout.dispose();
  }
}

/** Write the report's SBOM to `file` (atomically). */
export async function writeSbom(report: ScanReport, file: string): Promise<void> {
  await writeFileAtomic(file, `${JSON.stringify(report.sbom, null, 2)}\n`).catch((e: unknown) => {
    throw new BerthError('IO_ERROR', `cannot write the SBOM to ${file}: ${(e as Error).message}`, { hint: 'check that the directory exists and is writable', cause: e });
  });
}

/** The error a blocked scan exits with: its reasons, one line. */
export function blockedError(result: ScanResult): BerthError {
  return new BerthError('SCAN_BLOCKED', `${result.target} is blocked by the scan policy: ${result.reasons.join('; ')}`, {
    hint: 'update the image, or allow the advisory with --allow ID if it does not apply',
  });
}
