/**
 * Taking a container off the host, shared by uninstall and by recovery (which
 * finishes an uninstall a kill interrupted): stop and disable the unit, remove
 * it, its tmpfiles and the unchanged host files, then both slots. Runs under
 * the state lock; never takes it.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { crashPoint } from '../crashpoint.ts';
import type { DeploymentInfo } from '../deploy/info.ts';
import { Journal } from '../deploy/intent.ts';
import { exists, ifExists } from '../fsutil.ts';
import { syncDir } from '../durable.ts';
import { withSystemd } from '../systemd/session.ts';
import type { OpContext } from './context.ts';
import { deactivateFiles, readSlotInfo } from './deployment.ts';
import { removeUnit } from './unit-steps.ts';

export interface UninstallResult {
  name: string;
  /** false when there was nothing to remove. */
  removed: boolean;
  /** Host files left because they were changed since install. */
  keptHostFiles: string[];
  /** State directories removed (--purge-data) or kept. */
  purged: string[];
  keptData: string[];
}

export interface UninstallOptions {
  /** Also delete the container's state directories (tmpfiles lines under STATE_DIRECTORY). */
  purgeData?: boolean;
}

/** Directories the deployment's tmpfiles create under its STATE_DIRECTORY: the user's data. */
async function stateDirectories(slotDir: string, info: DeploymentInfo): Promise<string[]> {
  const state = info.values['STATE_DIRECTORY'];
  if (!info.hasTmpfiles || !state) return [];
  const text = (await ifExists(fs.readFile(path.join(slotDir, 'tmpfiles.conf'), 'utf8'))) ?? '';
  const dirs: string[] = [];
  for (const line of text.split('\n')) {
    const [type, p] = line.trim().split(/\s+/);
    if (type && p && /^[dDvqQ]/.test(type) && p.startsWith(`${state.replace(/\/+$/, '')}/`) && !p.includes('..')) dirs.push(p);
  }
  return dirs;
}

/**
 * Also recovery's way forward for an uninstall that was killed: every step
 * tolerates finding its work already done.
 */
export async function uninstallLocked(ctx: OpContext, name: string, options: UninstallOptions): Promise<UninstallResult> {
  const { paths, report } = ctx;
  const present = await Promise.all([paths.current(name), paths.slot(name, 0), paths.slot(name, 1)].map(exists));
  // Without a deployment, a unit of this name is not berth's to remove.
  if (!present.some(Boolean)) return { name, removed: false, keptHostFiles: [], purged: [], keptData: [] };
  // Recovery from a kill finishes the uninstall: half a container is worth less than none.
  const journal = new Journal(paths.root, { op: 'uninstall', name, phase: 'switch', ...(options.purgeData ? { purgeData: true } : {}) });
  await journal.write();
  crashPoint('uninstall.intent-written');
  const active = (await paths.activeSlot(name)) ?? 0;
  const info = (await readSlotInfo(paths, name, active)) ?? (await readSlotInfo(paths, name, active === 0 ? 1 : 0));
  if (info === undefined || info.hasUnit) {
    await withSystemd(async (systemd) => {
      report.step(`Stopping and removing ${paths.unitName(name)}`);
      await removeUnit(systemd, paths.unitFile(name), paths.unitName(name));
    });
  }
  crashPoint('uninstall.unit-removed');
  const data = info ? await stateDirectories(paths.slot(name, active), info) : [];
  const { keptHostFiles } = info ? await deactivateFiles(ctx, info) : { keptHostFiles: [] };
  crashPoint('uninstall.files-removed');
  for (const f of keptHostFiles) report.warn(`kept host file ${f}: it was changed after install`);
  if (options.purgeData) {
    for (const dir of data) await fs.rm(dir, { recursive: true, force: true });
  } else if (data.length > 0) {
    report.step(`Kept data in ${data.join(', ')} (--purge-data removes it)`);
  }
  // The NAME symlink goes first: from then on the container is not "installed".
  await fs.rm(paths.current(name), { force: true });
  await syncDir(paths.containers);
  crashPoint('uninstall.symlink-removed');
  for (const slot of [0, 1] as const) {
    await fs.rm(paths.slot(name, slot), { recursive: true, force: true });
    crashPoint('uninstall.slot-removed');
  }
  await syncDir(paths.containers);
  await journal.done();
  return { name, removed: true, keptHostFiles, purged: options.purgeData ? data : [], keptData: options.purgeData ? [] : data };
}
