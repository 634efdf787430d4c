/**
 * Ordering between system containers and other units, from the install
 * flags (--after etcd, --required-by docker, ...). atomic images expressed
 * this through variables (`After=$AFTER`); the flags add to whatever the
 * image's unit says.
 */
import { BerthError } from '../errors.ts';
import type { UnitFile } from './unit-file.ts';

export interface Ordering {
  after?: readonly string[];
  before?: readonly string[];
  requires?: readonly string[];
  wants?: readonly string[];
  requiredBy?: readonly string[];
  wantedBy?: readonly string[];
}

/** Each flag, the unit-file key it becomes, and where. */
export const ORDERING_FLAGS = [
  { field: 'after', flag: '--after', section: 'Unit', key: 'After' },
  { field: 'before', flag: '--before', section: 'Unit', key: 'Before' },
  { field: 'requires', flag: '--requires', section: 'Unit', key: 'Requires' },
  { field: 'wants', flag: '--wants', section: 'Unit', key: 'Wants' },
  { field: 'requiredBy', flag: '--required-by', section: 'Install', key: 'RequiredBy' },
  { field: 'wantedBy', flag: '--wanted-by', section: 'Install', key: 'WantedBy' },
] as const satisfies readonly { field: keyof Ordering; flag: string; section: 'Unit' | 'Install'; key: string }[];

const UNIT_SUFFIXES = ['service', 'socket', 'device', 'mount', 'automount', 'swap', 'target', 'path', 'timer', 'slice', 'scope'];
const unitNameRe = /^[A-Za-z0-9:_.\\@-]+$/;

/** A unit name as given, or NAME.service for a bare name (etcd, etcd-3.4). */
export function unitNameFor(name: string, flag = 'unit'): string {
  const suffix = name.slice(name.lastIndexOf('.') + 1);
  const unit = name.includes('.') && UNIT_SUFFIXES.includes(suffix) ? name : `${name}.service`;
  if (!unitNameRe.test(unit) || unit.length > 255 || unit.startsWith('.') || unit.startsWith('@')) {
    throw new BerthError('USAGE', `${flag} ${JSON.stringify(name.slice(0, 80))}: not a unit name`, {
      hint: 'give a unit name such as etcd.service, network-online.target, or a container name',
    });
  }
  return unit;
}

/** Validated, deduplicated unit names per flag. */
export function normaliseOrdering(ordering: Ordering, self: string): Required<Ordering> {
  const out = { after: [], before: [], requires: [], wants: [], requiredBy: [], wantedBy: [] } as Record<keyof Ordering, string[]>;
  for (const { field, flag } of ORDERING_FLAGS) {
    for (const name of ordering[field] ?? []) {
      const unit = unitNameFor(name, flag);
      if (unit === self) throw new BerthError('USAGE', `${flag} ${name}: a unit cannot depend on itself`, { hint: 'name another unit' });
      if (!out[field].includes(unit)) out[field].push(unit);
    }
  }
  return out;
}

/** Add the ordering entries the unit does not have yet. */
export function applyOrdering(unit: UnitFile, ordering: Ordering, self: string): void {
  const normal = normaliseOrdering(ordering, self);
  for (const { field, section, key } of ORDERING_FLAGS) {
    for (const name of normal[field]) {
      const present = unit.getAll(section, key).some((v) => v.split(/\s+/).includes(name));
      if (!present) unit.add(section, key, name);
    }
  }
}
