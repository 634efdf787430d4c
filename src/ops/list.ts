/** berth list: installed containers with their image and systemd state. */
import fs from 'node:fs/promises';
import path from 'node:path';
import { errnoCode } from '../errors.ts';
import { readInfo } from '../deploy/info.ts';
import { readlinkIfLink } from '../fsutil.ts';
import type { SystemdManager } from '../systemd/manager.ts';
import { withSystemd } from '../systemd/session.ts';
import type { OpContext } from './context.ts';

export interface ContainerSummary {
  name: string;
  image: string;
  manifestDigest: string;
  /** The active slot: 0 or 1. */
  slot: number;
  unit: string;
  activeState: string;
  subState: string;
  /** ISO time the unit last became active, if it is active. */
  since: string | undefined;
}

export async function list(ctx: OpContext): Promise<ContainerSummary[]> {
  const { paths } = ctx;
  let entries: string[];
  try {
    entries = await fs.readdir(paths.containers);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return [];
    throw e;
  }
  const names: { name: string; slot: number }[] = [];
  for (const entry of entries.sort()) {
    if (entry.startsWith('.')) continue;
    const target = await readlinkIfLink(path.join(paths.containers, entry));
    const m = target === undefined ? null : /^(.*)\.([01])$/.exec(target);
    if (m && m[1] === entry) names.push({ name: entry, slot: Number(m[2]) });
  }
  if (names.length === 0) return [];
  const query = async (systemd: SystemdManager | undefined) => {
    const out: ContainerSummary[] = [];
    for (const { name, slot } of names) {
      const info = await readInfo(paths.slot(name, slot as 0 | 1));
      const unit = paths.unitName(name);
      const state = systemd ? await systemd.unitState(unit) : undefined;
      out.push({
        name,
        image: info?.image ?? '?',
        manifestDigest: info?.manifestDigest ?? '?',
        slot,
        unit,
        activeState: state?.activeState ?? 'unknown',
        subState: state?.subState ?? 'unknown',
        since: state && state.activeState === 'active' && state.activeEnterTimestamp > 0 ? new Date(state.activeEnterTimestamp / 1000).toISOString() : undefined,
      });
    }
    return out;
  };
  try {
    return await withSystemd(query);
  } catch (e) {
    if ((e as { code?: string }).code !== 'NO_SYSTEM_BUS') throw e;
    ctx.report.warn(`${(e as Error).message}; showing states as unknown`);
    return query(undefined);
  }
}
