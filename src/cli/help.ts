/**
 * berth's help layout. yargs 17 wraps help at a fixed width and breaks words
 * in the middle ("pla" / "in-HTTP"); yargs 18 fixes that but needs Node
 * ^20.19. So yargs lays the help out unwrapped (.wrap(null)) and this wraps
 * it at word boundaries: the two-column rows (commands, options, examples)
 * keep their description column, with yargs' "[string] [default: ...]" notes
 * kept whole; other text wraps with its own indentation. A word longer than
 * the line is left whole, never split.
 */

/** The width help is wrapped to: $COLUMNS when set, else the terminal's (at most 100, for readability), else 80; at least 40. */
export function helpWidth(stream: { columns?: number } = process.stdout, env: NodeJS.ProcessEnv = process.env): number {
  const cols = Number(env['COLUMNS']) || Math.min(100, stream.columns || 80);
  return Math.max(40, cols);
}

/** yargs' notes after a description: [string] [required] [default: x] [choices: ...] [aliases: ...]. */
const NOTES = /\s{2,}(\[(?:string|boolean|number|array|count|required|deprecated|choices:|default:|aliases:)[^]*)$/;

/** Words of `text`, yargs' [...] notes each kept as one word. */
function words(text: string): string[] {
  const out: string[] = [];
  const notes = NOTES.exec(text);
  const body = notes ? text.slice(0, notes.index) : text;
  out.push(...body.split(/\s+/).filter(Boolean));
  if (notes) {
    // "[default: []]" nests brackets: split the notes where a "] [" boundary is.
    out.push(...notes[1]!.trim().split(/(?<=\])\s+(?=\[)/));
  }
  return out;
}

/** Fill `ws` into lines (a note wider than a line is broken at its spaces) of at most `width` columns, the first starting at column `first`, the rest at `indent`. */
function fill(ws: string[], width: number, first: string, indent: string): string[] {
  const lines: string[] = [];
  let line = first;
  let empty = true;
  for (const w of ws.flatMap((t) => (indent.length + t.length > width && t.includes(' ') ? t.split(' ') : [t]))) {
    if (!empty && line.length + 1 + w.length > width) {
      lines.push(line);
      line = indent + w;
    } else {
      line += (empty ? '' : ' ') + w;
    }
    empty = false;
  }
  lines.push(line);
  return lines;
}

/** Re-wrap yargs' unwrapped help text to `width` columns at word boundaries. */
export function formatHelp(text: string, width: number): string {
  const out: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trimEnd();
    if (line.length <= width) {
      out.push(line);
      continue;
    }
    // A row: "  left  description  [notes]" (left has no double space in it).
    const row = /^(\s+\S(?:\S| (?! ))*)(\s{2,})(\S.*)$/.exec(line);
    if (row) {
      const col = row[1]!.length + row[2]!.length;
      if (width - col >= 24) {
        out.push(...fill(words(row[3]!), width, row[1]! + row[2]!, ' '.repeat(col)));
        continue;
      }
      // No room beside it: the description below, indented.
      const lead = /^\s*/.exec(row[1]!)![0];
      out.push(...fill(words(row[1]!.slice(lead.length)), width, lead, `${lead}    `));
      out.push(...fill(words(row[3]!), width, ' '.repeat(8), ' '.repeat(8)));
      continue;
    }
    const indent = /^\s*/.exec(line)![0];
    out.push(...fill(words(line.slice(indent.length)), width, indent, indent));
  }
  return out.join('\n');
}
