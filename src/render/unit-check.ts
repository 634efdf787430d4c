/**
 * Checks a rendered unit against the key tables (unit-keys.ts): known
 * sections only ([Unit], [Service], [Install] and X- sections), each at most
 * once, and known, allowed keys.
 */
import { BerthError } from '../errors.ts';
import type { UnitFile } from './unit-file.ts';
import { isKnownSection, REFUSED_KEYS, UNIT_KEYS } from './unit-keys.ts';

function fail(what: string, why: string, hint: string): BerthError {
  return new BerthError('USAGE', `${what}: ${why}`, { hint });
}

export function checkUnitKeys(unit: UnitFile, what: string): void {
  const seen = new Set<string>();
  for (const section of unit.sections) {
    if (seen.has(section.name)) {
      // systemd merges repeated sections; berth reads only the first, so its checks could be bypassed.
      throw fail(what, `section [${section.name}] appears more than once`, 'merge the repeated sections into one');
    }
    seen.add(section.name);
    if (section.name.startsWith('X-')) continue;
    if (!isKnownSection(section.name)) {
      throw fail(what, `unknown section [${section.name}]`, 'a system container unit has [Unit], [Service] and [Install] (and X- sections)');
    }
    const known = UNIT_KEYS[section.name];
    const refused = REFUSED_KEYS[section.name];
    for (const line of section.lines) {
      if (line.kind !== 'entry' || line.key.startsWith('X-')) continue;
      const why = refused[line.key];
      if (why !== undefined) throw fail(what, `[${section.name}] ${line.key}= is not allowed: ${why}`, `remove ${line.key}= from the unit template`);
      if (!known.has(line.key)) {
        throw fail(what, `unknown key ${line.key}= in [${section.name}]`, `check the spelling (systemd.directives(7)); prefix custom keys with X-`);
      }
    }
  }
  if (!seen.has('Service')) throw fail(what, 'no [Service] section', 'the unit must say how to run the container (ExecStart=$EXEC_START)');
}
