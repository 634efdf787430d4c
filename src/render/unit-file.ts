/**
 * A lossless model of a systemd unit file (systemd.syntax(7)), in the spirit
 * of podman quadlet's parser: sections and lines keep their order, repeated
 * keys and comments survive a parse/serialise round trip, and an empty
 * assignment ("Key=") is kept, since systemd reads it as "reset the list".
 */
import { BerthError } from '../errors.ts';

export type UnitLine =
  | { kind: 'comment'; text: string } // includes blank lines
  | { kind: 'entry'; key: string; value: string };

export interface UnitSection {
  name: string;
  lines: UnitLine[];
  /** Parsed from text: printed exactly as read, with no separating blank line added. */
  verbatim?: boolean;
}

const keyRe = /^[A-Za-z0-9_-]+$/;
const sectionRe = /^\[([^\[\]]+)\]$/;

export class UnitFile {
  /** Lines before the first section (comments only). */
  readonly header: UnitLine[] = [];
  readonly sections: UnitSection[] = [];

  static parse(text: string, what = 'unit file'): UnitFile {
    const unit = new UnitFile();
    let current: UnitSection | undefined;
    const raw = text.split('\n');
    if (raw[raw.length - 1] === '') raw.pop();
    for (let i = 0; i < raw.length; i++) {
      let line = raw[i]!;
      const trimmed = line.trim();
      if (trimmed === '' || trimmed.startsWith('#') || trimmed.startsWith(';')) {
        (current?.lines ?? unit.header).push({ kind: 'comment', text: line });
        continue;
      }
      const section = sectionRe.exec(trimmed);
      if (section) {
        current = { name: section[1]!, lines: [], verbatim: true };
        unit.sections.push(current);
        continue;
      }
      // Continuation lines: a trailing backslash joins the next line (with a space, as systemd does).
      while (line.endsWith('\\') && i + 1 < raw.length) line = `${line.slice(0, -1)} ${raw[++i]!.trim()}`;
      const eq = line.indexOf('=');
      if (current === undefined || eq <= 0) {
        throw new BerthError('USAGE', `${what}, line ${i + 1}: ${current === undefined ? 'assignment outside a section' : 'expected KEY=VALUE'}`, {
          hint: 'fix the unit file syntax (systemd.syntax(7))',
        });
      }
      const key = line.slice(0, eq).trim();
      if (!keyRe.test(key)) throw new BerthError('USAGE', `${what}, line ${i + 1}: bad key "${key}"`, { hint: 'fix the unit file syntax (systemd.syntax(7))' });
      current.lines.push({ kind: 'entry', key, value: line.slice(eq + 1).trim() });
    }
    return unit;
  }

  section(name: string): UnitSection | undefined {
    return this.sections.find((s) => s.name === name);
  }

  private ensureSection(name: string): UnitSection {
    let s = this.section(name);
    if (!s) {
      s = { name, lines: [] };
      this.sections.push(s);
    }
    return s;
  }

  /** Every value of `key` in `section`, honouring empty-assignment resets. */
  getAll(section: string, key: string): string[] {
    const values: string[] = [];
    for (const line of this.section(section)?.lines ?? []) {
      if (line.kind !== 'entry' || line.key !== key) continue;
      if (line.value === '') values.length = 0;
      else values.push(line.value);
    }
    return values;
  }

  /** The last value of `key`, as systemd reads a single-valued setting. */
  get(section: string, key: string): string | undefined {
    const all = this.getAll(section, key);
    return all[all.length - 1];
  }

  /** Append an entry (repeated keys are kept). */
  add(section: string, key: string, value: string): this {
    checkEntry(key, value);
    const s = this.ensureSection(section);
    s.lines.splice(appendIndex(s), 0, { kind: 'entry', key, value });
    return this;
  }

  /** Replace every entry of `key` with one, at the position of the first. */
  set(section: string, key: string, value: string): this {
    checkEntry(key, value);
    const s = this.ensureSection(section);
    const first = s.lines.findIndex((l) => l.kind === 'entry' && l.key === key);
    s.lines = s.lines.filter((l, i) => i === first || !(l.kind === 'entry' && l.key === key));
    if (first < 0) s.lines.splice(appendIndex(s), 0, { kind: 'entry', key, value });
    else s.lines[first] = { kind: 'entry', key, value };
    return this;
  }

  /** Insert an entry before the first entry of `key` (its list then starts with it), or append it. */
  insertFirst(section: string, key: string, value: string): this {
    checkEntry(key, value);
    const s = this.ensureSection(section);
    const first = s.lines.findIndex((l) => l.kind === 'entry' && l.key === key);
    s.lines.splice(first < 0 ? appendIndex(s) : first, 0, { kind: 'entry', key, value });
    return this;
  }

  /** Replace the entries of `key` whose value matches with a comment line (saying why). */
  dropEntries(section: string, key: string, match: (value: string) => boolean, comment: string): number {
    const s = this.section(section);
    let n = 0;
    if (!s) return n;
    s.lines = s.lines.map((l) => {
      if (l.kind !== 'entry' || l.key !== key || !match(l.value)) return l;
      n++;
      return { kind: 'comment', text: `# ${comment.replace(/[\r\n]+/g, ' ')}` };
    });
    return n;
  }

  remove(section: string, key: string): this {
    const s = this.section(section);
    if (s) s.lines = s.lines.filter((l) => !(l.kind === 'entry' && l.key === key));
    return this;
  }

  toString(): string {
    const out: string[] = this.header.map(render);
    for (const s of this.sections) {
      if (!s.verbatim && out.length > 0 && out[out.length - 1] !== '') out.push('');
      out.push(`[${s.name}]`, ...s.lines.map(render));
    }
    return `${out.join('\n')}\n`;
  }
}

/** Where a new entry goes: after the section's last non-blank line, so blank lines stay between sections. */
function appendIndex(s: UnitSection): number {
  let i = s.lines.length;
  while (i > 0) {
    const l = s.lines[i - 1]!;
    if (l.kind === 'entry' || l.text.trim() !== '') break;
    i--;
  }
  return i;
}

function render(line: UnitLine): string {
  return line.kind === 'comment' ? line.text : `${line.key}=${line.value}`;
}

/** A value with a newline would smuggle extra lines into the unit: refuse it. */
function checkEntry(key: string, value: string): void {
  if (!keyRe.test(key)) throw new BerthError('USAGE', `bad unit file key "${key}"`, { hint: 'keys are letters, digits, - and _' });
  if (/[\n\r\0]/.test(value)) {
    throw new BerthError('USAGE', `value for ${key} contains a newline or NUL`, { hint: 'unit file values must be a single line' });
  }
}

/** Quote one argument for an Exec*= line (systemd.service(5) "Command lines"). */
export function quoteExecArg(arg: string): string {
  if (/[\n\r\0]/.test(arg)) throw new BerthError('USAGE', `command argument ${JSON.stringify(arg)} contains a newline or NUL`, { hint: 'arguments must be a single line' });
  // '%' starts a specifier and '$' a variable expansion in Exec lines; both are escaped.
  const escaped = arg.replace(/%/g, '%%').replace(/\$/g, '$$$$');
  if (escaped !== '' && /^[A-Za-z0-9_@%+=:,./-]+$/.test(escaped)) return escaped;
  return `"${escaped.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

export function execLine(argv: readonly string[]): string {
  return argv.map(quoteExecArg).join(' ');
}
