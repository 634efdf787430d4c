/**
 * Substitution into a JSON template (config.json.template) that a value
 * cannot break out of.
 *
 * A placeholder inside a JSON string literal gets the value JSON-escaped
 * (", \ and control characters), so `--set RECEIVER='x", "evil": "y'` stays
 * one string. A placeholder outside any string is a hook the image put there
 * on purpose to receive JSON (atomic images use `$ALL_PROCESS_CAPABILITIES`
 * inside a list and `$ADDTL_MOUNTS` after the last mount): its value is
 * inserted as written, must not leave a string open, and the caller reports
 * it; the result is parsed and validated like any config.json anyway.
 */
import { BerthError } from '../errors.ts';
import { expand, type Placeholder } from './template.ts';

export interface JsonTemplateResult {
  text: string;
  /** Variables inserted outside strings, i.e. as JSON. */
  rawVariables: string[];
}

/** For each offset of `text`: is it inside a JSON string literal (quotes excluded)? */
function stringMask(text: string): { mask: Uint8Array; open: boolean } {
  const mask = new Uint8Array(text.length);
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (!inString) {
      if (c === 0x22) inString = true;
      continue;
    }
    if (c === 0x5c) {
      mask[i] = 1;
      if (i + 1 < text.length) mask[++i] = 1;
    } else if (c === 0x22) {
      inString = false;
    } else {
      mask[i] = 1;
    }
  }
  return { mask, open: inString };
}

/** The text JSON.stringify would put between the quotes. */
export function jsonEscape(value: string): string {
  return JSON.stringify(value).slice(1, -1);
}

export function substituteJson(template: string, values: Readonly<Record<string, string>>, file: string): JsonTemplateResult {
  const { mask } = stringMask(template);
  const raw = new Set<string>();
  const encode = (value: string, at: Placeholder): string => {
    if (mask[at.offset] === 1) return jsonEscape(value);
    if (stringMask(value).open) {
      throw new BerthError('USAGE', `${file}: the value of $${at.name} is inserted as JSON and leaves a string open`, {
        hint: `$${at.name} stands outside a JSON string in the template, so its value must be complete JSON (or empty)`,
      });
    }
    raw.add(at.name);
    return value;
  };
  return { text: expand(template, values, file, { invalid: 'keep', encode }), rawVariables: [...raw] };
}
