/**
 * podman's listing habits for `berth images` and `berth list`: -q, --format
 * (json, or a Go-template subset), --noheading, --no-trunc, --filter KEY=VALUE.
 *
 * The template subset is small and safe: text, `{{.Field}}` (fields of the
 * row, by podman's names), `{{json .Field}}`, `{{json .}}`, `{{upper
 * .Field}}`, `{{lower .Field}}`, `\t` and `\n`; a leading `table ` prints a
 * header row and aligns the columns. Nothing else is evaluated: an unknown
 * field or action is a usage error naming what there is.
 */
import type { Argv } from 'yargs';
import { BerthError } from '../errors.ts';
import { didYouMean } from '../did-you-mean.ts';
import { table } from './output.ts';

export interface ListingArgs {
  quiet: boolean;
  json: boolean;
  format: string | undefined;
  noheading: boolean;
  /** false with --no-trunc (yargs reads --no-X as X=false). */
  trunc: boolean;
  filter: string[];
}

export function listingOptions<T>(y: Argv<T>, what: { quiet: string; fields: readonly string[]; filters: readonly string[] }) {
  return y
    .option('json', { type: 'boolean', default: false, describe: 'print as JSON (the same as --format json)' })
    .option('format', { type: 'string', describe: `json, or a Go template such as '{{.${what.fields[0]}}}\\t{{.${what.fields[1]}}}' (fields: ${what.fields.join(', ')}); 'table …' adds a header` })
    .option('noheading', { alias: 'n', type: 'boolean', default: false, describe: 'no header row' })
    .option('trunc', { type: 'boolean', default: true, describe: 'short image IDs; --no-trunc prints full digests' })
    .option('filter', { type: 'string', array: true, default: [] as string[], describe: `only rows matching KEY=VALUE (repeatable; ${what.filters.join(', ')}; * and ? match any text)` })
    .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: what.quiet });
}

/** A row: podman's field names to text. */
export type Row = Record<string, string>;

const unescape = (s: string) => s.replace(/\\t/g, '\t').replace(/\\n/g, '\n');

type Piece = { text: string } | { field: string | undefined; fn: 'json' | 'upper' | 'lower' | undefined };

/** The template split into text and actions; every action checked against `fields`. */
export function parseTemplate(template: string, fields: readonly string[]): Piece[] {
  const pieces: Piece[] = [];
  const re = /\{\{-?\s*(.*?)\s*-?\}\}/g;
  let last = 0;
  for (let m = re.exec(template); m !== null; m = re.exec(template)) {
    if (m.index > last) pieces.push({ text: unescape(template.slice(last, m.index)) });
    last = m.index + m[0].length;
    const action = /^(?:(json|upper|lower)\s+)?\.([A-Za-z][A-Za-z0-9]*)?$/.exec(m[1]!);
    if (!action) throw new BerthError('USAGE', `--format: cannot use {{${m[1]}}}`, { hint: `berth understands {{.Field}}, {{json .Field}}, {{json .}}, {{upper .Field}}, {{lower .Field}}; fields: ${fields.join(', ')}` });
    const fn = action[1] as 'json' | 'upper' | 'lower' | undefined;
    const field = action[2];
    if (field === undefined && fn !== 'json') throw new BerthError('USAGE', `--format: {{${m[1]}}} names no field`, { hint: `fields: ${fields.join(', ')}` });
    if (field !== undefined && !fields.includes(field)) {
      const near = didYouMean(field, fields);
      throw new BerthError('USAGE', `--format: no field .${field}`, { hint: `${near ? `${near.replace(/mean /, 'mean .')} ` : ''}fields: ${fields.join(', ')}` });
    }
    pieces.push({ field, fn });
  }
  if (last < template.length) pieces.push({ text: unescape(template.slice(last)) });
  if (template.includes('{{') && pieces.every((p) => 'text' in p)) throw new BerthError('USAGE', `--format: unbalanced {{ in ${JSON.stringify(template)}`, { hint: 'write {{.Field}}' });
  return pieces;
}

function expand(pieces: Piece[], row: Row, data: unknown): string {
  return pieces
    .map((p) => {
      if ('text' in p) return p.text;
      if (p.field === undefined) return JSON.stringify(data);
      const v = row[p.field] ?? '';
      return p.fn === 'json' ? JSON.stringify(v) : p.fn === 'upper' ? v.toUpperCase() : p.fn === 'lower' ? v.toLowerCase() : v;
    })
    .join('');
}

/** A glob (* and ?) as a whole-string match. */
function glob(pattern: string): RegExp {
  return new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
}

/**
 * --filter KEY=VALUE...: `match[KEY](VALUE)` gives a test per row; rows must
 * pass every filter (podman: different keys AND, a repeated key OR).
 */
export function rowFilter<T>(filters: readonly string[], match: Record<string, (value: string, glob: RegExp) => (item: T) => boolean>): (item: T) => boolean {
  const byKey = new Map<string, ((item: T) => boolean)[]>();
  for (const f of filters) {
    const eq = f.indexOf('=');
    const key = eq < 0 ? f : f.slice(0, eq);
    const make = match[key];
    if (eq < 0 || make === undefined) {
      const near = didYouMean(key, Object.keys(match));
      throw new BerthError('USAGE', `--filter ${f}: ${eq < 0 ? 'expected KEY=VALUE' : `unknown filter ${key}`}`, { hint: `${near ? `${near} ` : ''}filters: ${Object.keys(match).join(', ')}` });
    }
    const value = f.slice(eq + 1);
    byKey.set(key, [...(byKey.get(key) ?? []), make(value, glob(value))]);
  }
  return (item) => [...byKey.values()].every((tests) => tests.some((t) => t(item)));
}

export function boolFilter(key: string, value: string): boolean {
  if (value === 'true' || value === '1') return true;
  if (value === 'false' || value === '0') return false;
  throw new BerthError('USAGE', `--filter ${key}=${value}: expected true or false`);
}

/**
 * Print rows as asked: --format json / --json (the `data` items), a
 * template, -q (the `quietField` column, once each), or the table.
 */
export function printListing<T>(args: ListingArgs, items: { data: T; row: Row }[], o: { fields: readonly string[]; columns: readonly [string, string][]; quietField: string }): void {
  const format = args.format?.trim();
  if (args.json || format === 'json') {
    process.stdout.write(`${JSON.stringify(items.map((i) => i.data), null, 2)}\n`);
    return;
  }
  if (format !== undefined && format !== '' && format !== 'table') {
    const isTable = format.startsWith('table ');
    const pieces = parseTemplate(isTable ? format.slice('table '.length) : (args.format ?? ''), o.fields);
    if (isTable) {
      // Each column is what lies between tabs; its header the field's name in capitals.
      const header = expand(pieces, Object.fromEntries(o.fields.map((f) => [f, f.toUpperCase()])), null).split('\t');
      const rows = items.map((i) => expand(pieces, i.row, i.data).split('\t'));
      const out = table(header, rows);
      process.stdout.write(args.noheading ? out.split('\n').slice(1).join('\n') : out);
      return;
    }
    for (const i of items) process.stdout.write(`${expand(pieces, i.row, i.data)}\n`);
    return;
  }
  if (args.quiet) {
    const seen = new Set<string>();
    for (const i of items) {
      const v = i.row[o.quietField] ?? '';
      if (!seen.has(v)) process.stdout.write(`${v}\n`);
      seen.add(v);
    }
    return;
  }
  const out = table(o.columns.map(([h]) => h), items.map((i) => o.columns.map(([, f]) => i.row[f] ?? '')));
  process.stdout.write(args.noheading ? out.split('\n').slice(1).join('\n') : out);
}
