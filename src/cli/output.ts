/** How berth talks to people and scripts: progress on stderr, results on stdout. */
import { BerthError, ExitCode } from '../errors.ts';
import type { Reporter } from '../ops/context.ts';

const useColor = (stream: NodeJS.WriteStream) => stream.isTTY === true && !process.env['NO_COLOR'] && process.env['TERM'] !== 'dumb';

export function paint(stream: NodeJS.WriteStream, code: string, text: string): string {
  return useColor(stream) ? `\x1b[${code}m${text}\x1b[0m` : text;
}

export function stderrReporter(quiet: boolean, stream: NodeJS.WriteStream = process.stderr, now: () => number = Date.now): Reporter {
  const block = new ProgressBlock(stream);
  // A terminal that can move the cursor gets lines redrawn in place; anything else a log.
  const live = stream.isTTY === true && process.env['TERM'] !== 'dumb';
  const rates = new Transfers(now);
  const line = (text: string) => {
    if (live) block.print(text);
    else stream.write(`${text}\n`);
  };
  return {
    step: (m) => {
      if (!quiet) line(paint(stream, '2', m));
    },
    warn: (m) => line(paint(stream, '33', `berth: warning: ${m}`)),
    progress: (id, text, final = false, bytes) => {
      if (quiet) return;
      const t = bytes ? rates.update(id, bytes.done, bytes.total, final) : undefined;
      if (live) {
        // On a terminal: each task's rate, and a total line below them.
        block.update(id, paint(stream, '2', t && !final && bytes!.done > 0 ? `${text}, ${formatRate(t.rate)}` : text), final);
        if (t) block.update('total', paint(stream, '2', rates.totalLine()), rates.idle());
        return;
      }
      // A log (the journal): each task's first line, a line every 10 s or 25 %, its last line with its rate, and a total when all are done.
      const first = !block.seen(id);
      if (final) stream.write(`${text}${t ? ` in ${formatSeconds(t.elapsed)}, ${formatRate(t.averageRate)}` : ''}\n`);
      else if (first || (t && rates.due(id))) stream.write(`${text}${t && !first ? `, ${formatRate(t.rate)}` : ''}\n`);
      if (final && t && rates.idle()) stream.write(`${rates.totalLine()}\n`);
    },
  };
}

/** Byte counts of transfers (layers) by id: each one's rate, and the total over those running together. */
class Transfers {
  private readonly tasks = new Map<string, { start: number; done: number; total: number; final: boolean; samples: [number, number][]; loggedAt: number; loggedQuarter: number }>();
  private batchStart = 0;

  constructor(private readonly now: () => number) {}

  update(id: string, done: number, total: number, final: boolean) {
    const t = this.now();
    if (this.idle()) {
      // A new batch: the total counts from here.
      this.tasks.clear();
      this.batchStart = t;
    }
    let task = this.tasks.get(id);
    if (!task) this.tasks.set(id, (task = { start: t, done: 0, total, final: false, samples: [], loggedAt: t, loggedQuarter: 0 }));
    task.done = done;
    task.total = total;
    task.final ||= final;
    task.samples.push([t, done]);
    // The rate over the last ~5 s: steady, yet it follows a change of speed.
    while (task.samples.length > 2 && t - task.samples[0]![0] > 5000) task.samples.shift();
    const [t0, d0] = task.samples[0]!;
    const elapsed = (t - task.start) / 1000;
    return { rate: t > t0 ? ((done - d0) * 1000) / (t - t0) : 0, elapsed, averageRate: elapsed > 0 ? done / elapsed : 0 };
  }

  /** A log line is due: 10 s since the last one, or a new quarter of the layer. */
  due(id: string): boolean {
    const task = this.tasks.get(id);
    if (!task) return false;
    const t = this.now();
    const quarter = task.total > 0 ? Math.floor((task.done / task.total) * 4) : 0;
    if (t - task.loggedAt < 10_000 && quarter <= task.loggedQuarter) return false;
    task.loggedAt = t;
    task.loggedQuarter = quarter;
    return true;
  }

  /** Every transfer seen has finished. */
  idle(): boolean {
    return [...this.tasks.values()].every((t) => t.final);
  }

  totalLine(): string {
    let done = 0;
    let total = 0;
    for (const t of this.tasks.values()) {
      done += t.done;
      total += t.total;
    }
    const elapsed = (this.now() - this.batchStart) / 1000;
    const rate = elapsed > 0 ? done / elapsed : 0;
    return this.idle()
      ? `  total ${formatSize(done)} in ${formatSeconds(elapsed)}, ${formatRate(rate)}`
      : `  total ${formatSize(done)} / ${formatSize(total)}, ${formatRate(rate)}`;
  }
}

/** 1234567 -> "1.2 MiB", as ops/pull.ts's formatBytes writes the layer sizes next to it. */
function formatSize(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

export const formatRate = (bytesPerSecond: number) => `${formatSize(Math.round(bytesPerSecond))}/s`;
const formatSeconds = (s: number) => (s < 10 ? `${s.toFixed(1)} s` : `${Math.round(s)} s`);

/**
 * The lines of tasks still in progress, at the bottom of a terminal, each
 * redrawn in place (cursor up, clear line, down again). Every row printed
 * since the oldest live task is counted, so the cursor arithmetic stays
 * right; rows above it never change again and are forgotten.
 */
class ProgressBlock {
  /** Rows from the oldest live task down; id undefined for rows that never change. */
  private rows: { id: string | undefined; final: boolean }[] = [];
  private readonly known = new Set<string>();

  constructor(private readonly stream: NodeJS.WriteStream) {}

  seen(id: string): boolean {
    const had = this.known.has(id);
    this.known.add(id);
    return had;
  }

  /** A plain line, as is; it may wrap, so count the rows it takes. */
  print(text: string): void {
    this.stream.write(`${text}\n`);
    if (this.rows.length === 0) return;
    const width = this.stream.columns || 80;
    const n = Math.max(1, Math.ceil(visible(text).length / width));
    for (let i = 0; i < n; i++) this.rows.push({ id: undefined, final: true });
  }

  update(id: string, text: string, final: boolean): void {
    this.known.add(id);
    const line = this.fit(text);
    const i = this.rows.findIndex((r) => r.id === id);
    const up = this.rows.length - i;
    if (i >= 0 && up < (this.stream.rows || 24)) {
      this.stream.write(`\x1b[${up}A\r\x1b[2K${line}\x1b[${up}B\r`);
      this.rows[i]!.final ||= final;
    } else {
      // New, or scrolled off the screen where the cursor cannot reach: a new row at the bottom.
      if (i >= 0) this.rows[i] = { id: undefined, final: true };
      this.stream.write(`${line}\n`);
      this.rows.push({ id, final });
    }
    while (this.rows[0]?.final) this.rows.shift();
  }

  /** Our own lines are cut to the terminal's width: a wrapped one would take two rows. */
  private fit(text: string): string {
    const width = this.stream.columns;
    const plain = visible(text);
    if (!width || plain.length < width) return text;
    return `${plain.slice(0, width - 2)}…`;
  }
}

/** Text without its colour escape sequences, which take no columns. */
const visible = (text: string) => text.replace(/\x1b\[[0-9;]*m/g, '');

/** Print an error (one line, then its hint and details) and return the exit status. */
export function reportError(e: unknown, json: boolean): number {
  const err = e instanceof BerthError ? e : new BerthError('INTERNAL', (e as Error)?.stack ?? String(e), { hint: 'this is a bug in berth; please report it' });
  if (json) {
    process.stdout.write(`${JSON.stringify({ error: err.toJSON() })}\n`);
  }
  const hint = err.hint ? ` (${err.hint})` : '';
  process.stderr.write(`${paint(process.stderr, '31', `berth: error: ${err.message}`)}${hint}\n`);
  for (const line of err.details) process.stderr.write(`  ${line}\n`);
  return err.exitCode ?? ExitCode.failure;
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** A plain text table: columns padded to the widest cell. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}
