/**
 * Python string.Template substitution, as atomic used for its exports/
 * templates: $NAME and ${NAME} (identifiers [_a-zA-Z][_a-zA-Z0-9]*) are
 * replaced, $$ is a literal $, and a variable with no value is an error
 * naming the file and every missing variable.
 *
 * Anything else after $ ("$1", "$@", "$(") is an error in strict mode (the
 * default, for berth's own templates) and is kept as written in "keep" mode:
 * atomic rendered images' files with safe_substitute(), so image files such
 * as shell wrappers rely on it.
 */
import { BerthError } from '../errors.ts';

const pattern = /\$(?:(\$)|([_a-zA-Z][_a-zA-Z0-9]*)|\{([_a-zA-Z][_a-zA-Z0-9]*)\}|())/g;

/** A variable reference in a template. */
export interface Placeholder {
  name: string;
  /** Offset of the "$" in the template. */
  offset: number;
  /** Length of the placeholder text ("$X" or "${X}"). */
  length: number;
}

export interface ExpandOptions {
  /** What to do with a "$" that starts no placeholder (default 'error'). */
  invalid?: 'error' | 'keep';
  /** Turns a value into the text that replaces `at` (escaping for the file's syntax; may throw). */
  encode?: (value: string, at: Placeholder) => string;
}

/** Values are looked up as own properties only: "$constructor" is not Object's. */
export function lookupValue(values: Readonly<Record<string, string>>, name: string): string | undefined {
  return Object.hasOwn(values, name) ? values[name] : undefined;
}

export function expand(template: string, values: Readonly<Record<string, string>>, file: string, options: ExpandOptions = {}): string {
  const missing = new Set<string>();
  const text = template.replace(pattern, (match, escaped: string | undefined, named: string | undefined, braced: string | undefined, _invalid: string | undefined, offset: number) => {
    if (escaped !== undefined) return '$';
    const name = named ?? braced;
    if (name === undefined) {
      if (options.invalid === 'keep') return match;
      const line = template.slice(0, offset).split('\n').length;
      throw new BerthError('USAGE', `${file}, line ${line}: invalid placeholder "${template.slice(offset, offset + 2)}"`, {
        hint: 'write $$ for a literal $, and $NAME or ${NAME} for a variable',
      });
    }
    const value = lookupValue(values, name);
    if (value === undefined) {
      missing.add(name);
      return match;
    }
    return options.encode ? options.encode(value, { name, offset, length: match.length }) : value;
  });
  if (missing.size > 0) throw missingVariables(file, [...missing]);
  return text;
}

function missingVariables(file: string, names: readonly string[]): BerthError {
  const list = names.map((n) => `$${n}`).join(', ');
  const message = names.length === 1 ? `${file}: variable ${list} has no value` : `${file}: variables ${list} have no value`;
  return new BerthError('USAGE', message, { hint: `set ${names.length === 1 ? 'it' : 'them'} with ${names.map((n) => `--set ${n}=VALUE`).join(' ')}` });
}

/**
 * Substitution for line-based files (units, tmpfiles.d, host files): a value
 * with a newline or NUL is refused, and so is a value ending in a backslash
 * at the end of a line, which would join the next template line to it.
 */
export function substituteLines(template: string, values: Readonly<Record<string, string>>, file: string, invalid: 'error' | 'keep'): string {
  const encode = (value: string, at: Placeholder): string => {
    if (/[\n\r\0]/.test(value)) {
      throw new BerthError('USAGE', `${file}: the value of $${at.name} contains a newline or NUL`, { hint: 'template values must be a single line' });
    }
    const next = template[at.offset + at.length];
    if (value.endsWith('\\') && (next === undefined || next === '\n' || next === '\r')) {
      throw new BerthError('USAGE', `${file}: the value of $${at.name} ends with a backslash at the end of a line, which would join the next line to it`, {
        hint: `remove the trailing backslash from ${at.name}`,
      });
    }
    return value;
  };
  return expand(template, values, file, { invalid, encode });
}

/** Strict substitution (berth's built-in templates). */
export function substitute(template: string, values: Readonly<Record<string, string>>, file: string): string {
  return expand(template, values, file);
}

/** The variables a template refers to, in order of first use. */
export function templateVariables(template: string): string[] {
  const names = new Set<string>();
  for (const m of template.matchAll(pattern)) {
    const name = m[2] ?? m[3];
    if (name !== undefined) names.add(name);
  }
  return [...names];
}
