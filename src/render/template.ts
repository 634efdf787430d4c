/**
 * Python string.Template substitution, as atomic used for its exports/
 * templates: $NAME and ${NAME} (identifiers [_a-zA-Z][_a-zA-Z0-9]*) are
 * replaced, $$ is a literal $, and anything else after $ is an error, as is
 * a variable with no value (naming the file and the variable).
 */
import { BerthError } from '../errors.ts';

const pattern = /\$(?:(\$)|([_a-zA-Z][_a-zA-Z0-9]*)|\{([_a-zA-Z][_a-zA-Z0-9]*)\}|())/g;

export function substitute(template: string, values: Readonly<Record<string, string>>, file: string): string {
  return template.replace(pattern, (match, escaped: string | undefined, named: string | undefined, braced: string | undefined, _invalid: string | undefined, offset: number) => {
    if (escaped !== undefined) return '$';
    const name = named ?? braced;
    if (name === undefined) {
      const line = template.slice(0, offset).split('\n').length;
      throw new BerthError('USAGE', `${file}, line ${line}: invalid placeholder "${template.slice(offset, offset + 2)}"`, {
        hint: 'write $$ for a literal $, and $NAME or ${NAME} for a variable',
      });
    }
    const value = values[name];
    if (value === undefined) {
      throw new BerthError('USAGE', `${file}: variable $${name} has no value`, { hint: `set it with --set ${name}=VALUE` });
    }
    return value;
  });
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
