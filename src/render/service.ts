/**
 * The systemd unit of a system container: a template (the built-in one for
 * now) rendered with atomic's variables, then parsed into the lossless unit
 * model, which refuses anything that is not a well-formed unit file.
 */
import { BerthError } from '../errors.ts';
import { readBuiltinTemplate } from './templates.ts';
import { substitute } from './template.ts';
import { UnitFile } from './unit-file.ts';

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
