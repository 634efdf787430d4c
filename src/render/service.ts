/**
 * The systemd unit of a system container: the image's service.template or
 * the built-in one, rendered with atomic's variables, parsed into the
 * lossless unit model, checked against the key tables, adapted to how berth
 * runs the container and probes its readiness (unit-runtime.ts), and given
 * the ordering flags.
 */
import { BerthError } from '../errors.ts';
import type { RunMode } from '../runtime/runtime.ts';
import { berthCommand } from '../self.ts';
import { applyOrdering, type Ordering } from './ordering.ts';
import type { Readiness } from '../runtime/readiness.ts';
import type { NativeTranslation } from './native-keys.ts';
import { readBuiltinTemplate } from './templates.ts';
import { substitute, substituteLines } from './template.ts';
import { checkUnitKeys } from './unit-check.ts';
import { UnitFile } from './unit-file.ts';
import { adaptToRuntime } from './unit-runtime.ts';

/** Values reach unit files verbatim: a newline or NUL would inject lines. */
export function checkValues(values: Readonly<Record<string, string>>): void {
  for (const [key, value] of Object.entries(values)) {
    if (/[\n\r\0]/.test(value)) {
      throw new BerthError('USAGE', `value of ${key} contains a newline or NUL`, { hint: 'template values must be a single line' });
    }
  }
}

export async function renderDefaultUnit(values: Readonly<Record<string, string>>): Promise<UnitFile> {
  checkValues(values);
  const text = substitute(await readBuiltinTemplate('service.template'), values, 'built-in service.template');
  return UnitFile.parse(text, 'rendered unit');
}

export interface UnitInput {
  /** The image's /exports/service.template; undefined for the built-in one. */
  template?: string;
  values: Readonly<Record<string, string>>;
  ordering?: Ordering;
  /** How $EXEC_START was rendered (runModeOf the template; default detach). */
  runMode?: RunMode;
  readiness?: Readiness | undefined;
  /** How the unit runs berth (default: this berth, self.ts). */
  berth?: readonly string[];
  /** The systemd backend's translation of config.json (native-keys.ts); undefined with an OCI runtime. */
  native?: NativeTranslation | undefined;
}

export interface RenderedUnit {
  unit: UnitFile;
  warnings: string[];
}

export async function renderUnit(input: UnitInput): Promise<RenderedUnit> {
  const fromImage = input.template !== undefined;
  const file = fromImage ? '/exports/service.template' : 'built-in service.template';
  const template = input.template ?? (await readBuiltinTemplate('service.template'));
  // Image templates get atomic's safe_substitute treatment of stray "$"; berth's own are strict.
  const text = substituteLines(template, input.values, file, fromImage ? 'keep' : 'error');
  const what = `unit rendered from ${file}`;
  const unit = UnitFile.parse(text, what);
  checkUnitKeys(unit, what);
  const warnings = adaptToRuntime(unit, input.values, what, { mode: input.runMode ?? 'detach', readiness: input.readiness, berth: input.berth ?? berthCommand(), native: input.native });
  const name = input.values['NAME'];
  if (name === undefined) throw new BerthError('INTERNAL', 'renderUnit: NAME has no value');
  applyOrdering(unit, input.ordering ?? {}, `${name}.service`);
  return { unit, warnings };
}
