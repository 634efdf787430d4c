/** berth status: one container in full, both slots, values, host files, the journal's tail. */
import { BerthError } from '../errors.ts';
import { checkName } from '../deploy/paths.ts';
import type { DeploymentInfo } from '../deploy/info.ts';
import type { Digest } from '../image/digest.ts';
import { journalTail } from '../systemd/journal.ts';
import type { UnitState } from '../systemd/manager.ts';
import { withSystemd } from '../systemd/session.ts';
import type { OpContext } from './context.ts';
import { readSlotInfo } from './deployment.ts';

export interface ContainerStatus {
  name: string;
  activeSlot: 0 | 1;
  unit: (Pick<UnitState, 'activeState' | 'subState' | 'unitFileState' | 'loadState'> & { name: string; since?: string }) | undefined;
  slots: { slot: 0 | 1; active: boolean; info: DeploymentInfo }[];
  /** The live slot's runtime: runc, crun, a path, or systemd (no OCI runtime), who chose it, and what the systemd backend does differently. */
  runtime: { name: string; from: string; notes: string[] } | undefined;
  journal: string[];
  /**
   * The live slot runs from a shared store: whether the share still holds its
   * image (retention may remove it), asked with a bounded probe (a hung share
   * never hangs status); `holds` is absent when the share did not answer.
   */
  share?: { share: string; rootfs: string; holds?: boolean; reason?: string };
}

export async function status(ctx: OpContext, name: string): Promise<ContainerStatus> {
  checkName(name);
  const { paths } = ctx;
  const activeSlot = await paths.activeSlot(name);
  if (activeSlot === undefined) throw new BerthError('NOT_INSTALLED', `container ${name} is not installed`, { hint: 'berth list shows what is installed' });
  const slots: ContainerStatus['slots'] = [];
  for (const slot of [0, 1] as const) {
    const info = await readSlotInfo(paths, name, slot);
    if (info) slots.push({ slot, active: slot === activeSlot, info });
  }
  const unitName = paths.unitName(name);
  const unit = await withSystemd(async (systemd) => {
    const s = await systemd.unitState(unitName);
    return {
      name: unitName,
      activeState: s.activeState,
      subState: s.subState,
      unitFileState: s.unitFileState,
      loadState: s.loadState,
      ...(s.activeState === 'active' && s.activeEnterTimestamp > 0 ? { since: new Date(s.activeEnterTimestamp / 1000).toISOString() } : {}),
    };
  }).catch((e: unknown) => {
    if ((e as { code?: string }).code !== 'NO_SYSTEM_BUS') throw e;
    return undefined;
  });
  const live = slots.find((sl) => sl.active)?.info;
  const runtime = live === undefined ? undefined : { name: live.runtimeName, from: live.runtimeFrom ?? 'default', notes: live.runtimeNotes ?? [] };
  let share: ContainerStatus['share'];
  if (live?.source?.kind === 'share') {
    const { shareHolds } = await import('../share/reader.ts');
    const r = await shareHolds(live.source.share, live.manifestDigest as Digest);
    share = { share: live.source.share, rootfs: live.source.rootfs, ...('holds' in r ? { holds: r.holds } : { reason: r.unknown }) };
  }
  return { name, activeSlot, unit, slots, runtime, journal: await journalTail(unitName, 10), ...(share === undefined ? {} : { share }) };
}
