/**
 * install's --after/--requires/... names, checked as a plan checks its
 * entries: a bare name means a berth container (NAME.service). One that is
 * neither installed nor a unit this host has would render an ordering that
 * never applies. A near miss of an installed container (--after etdc with
 * etcd installed) is a typo: refused. Anything else is allowed, with a
 * warning (containers may be installed in any order: docker --after flannel
 * before flannel), and a full unit name (etdc.service) is taken as written.
 */
import { didYouMean } from '../did-you-mean.ts';
import { BerthError } from '../errors.ts';
import { lstatIfExists } from '../fsutil.ts';
import { ORDERING_FLAGS, type Ordering } from '../render/ordering.ts';
import type { OpContext } from '../ops/context.ts';
import { installedNames } from '../ops/update.ts';

/** Where systemd loads unit files from (systemd.unit(5), system manager). */
const UNIT_PATHS = ['/etc/systemd/system', '/run/systemd/system', '/usr/local/lib/systemd/system', '/usr/lib/systemd/system', '/lib/systemd/system'];

async function unitExists(unit: string, unitDir: string): Promise<boolean> {
  const template = unit.replace(/@[^.]*\./, '@.');
  for (const dir of new Set([unitDir, ...UNIT_PATHS])) {
    for (const name of new Set([unit, template])) {
      if ((await lstatIfExists(`${dir}/${name}`)) !== undefined) return true;
    }
  }
  return false;
}

export async function checkOrderingNames(ctx: OpContext, ordering: Ordering, self: string | undefined): Promise<void> {
  const bare = ORDERING_FLAGS.flatMap(({ field, flag }) => (ordering[field] ?? []).filter((n) => !n.includes('.')).map((name) => ({ flag, name })));
  if (bare.length === 0) return;
  const installed = (await installedNames(ctx, false)).filter((n) => n !== self);
  for (const { flag, name } of bare) {
    if (installed.includes(name) || name === self || (await unitExists(`${name}.service`, ctx.paths.unitDir))) continue;
    const near = didYouMean(name, installed);
    if (near !== undefined) {
      throw new BerthError('USAGE', `${flag} ${name}: no berth container or unit ${name}.service`, { hint: `${near} Or write ${name}.service for a unit not installed yet` });
    }
    ctx.report.warn(`${flag} ${name}: no berth container or unit ${name}.service yet; the ordering applies once one is installed`);
  }
}
