/** How berth talks to people and scripts: progress on stderr, results on stdout. */
import { BerthError, errnoCode, ExitCode } from '../errors.ts';
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

/** The errno code of `e` or of one of its causes. */
function errnoOf(e: unknown): { code: string; path: string | undefined } | undefined {
  for (let c: unknown = e, i = 0; c !== undefined && c !== null && i < 5; c = (c as { cause?: unknown }).cause, i++) {
    const code = errnoCode(c);
    if (code !== undefined && /^E[A-Z0-9]+$/.test(code)) {
      const p = (c as { path?: unknown }).path;
      return { code, path: typeof p === 'string' ? p : undefined };
    }
  }
  return undefined;
}

const firstLine = (s: string) => s.split('\n')[0] ?? '';

/**
 * What a user sees of any failure: a BerthError as it is, a system error
 * (permission, disk, missing file) as one line naming the path, and anything
 * else as one line that says it is a bug. Never a stack trace, unless
 * $BERTH_DEBUG is set.
 */
export function asBerthError(e: unknown, command = 'command'): BerthError {
  const asRoot = typeof process.getuid !== 'function' || process.getuid() === 0;
  const errno = errnoOf(e);
  if (e instanceof BerthError && e.code === 'NOT_ROOT') return e;
  if (!asRoot && (errno?.code === 'EACCES' || errno?.code === 'EPERM')) {
    const what = e instanceof BerthError ? e.message : `permission denied${errno.path ? `: ${errno.path}` : ''}`;
    return new BerthError('NOT_ROOT', `berth ${command} needs root: ${firstLine(what)}`, { hint: `run: sudo berth ${command} ...`, cause: e });
  }
  if (e instanceof BerthError) return e;
  if (errno !== undefined) {
    const message = e instanceof Error ? firstLine(e.message) : String(e);
    return new BerthError('IO_ERROR', message, { hint: errno.path ? `check ${errno.path}` : 'check the paths given', cause: e });
  }
  const message = e instanceof Error ? `${e.name === 'Error' ? '' : `${e.name}: `}${firstLine(e.message)}` : firstLine(String(e));
  return new BerthError('INTERNAL', message, { hint: 'this is a bug in berth; please report it with the output of BERTH_DEBUG=1 berth ...', cause: e });
}

/** $BERTH_DEBUG set (and not 0): errors show their stack traces. */
export const debugging = () => !['', '0', undefined].includes(process.env['BERTH_DEBUG']);

/** Print an error (one line, then its hint and details) and return the exit status. */
export function reportError(e: unknown, json: boolean, command?: string): number {
  const err = asBerthError(e, command);
  if (json) {
    process.stdout.write(`${JSON.stringify({ error: err.toJSON() })}\n`);
  }
  const hint = err.hint ? ` (${err.hint})` : '';
  process.stderr.write(`${paint(process.stderr, '31', `berth: error: ${err.message}`)}${hint}\n`);
  for (const line of err.details) process.stderr.write(`  ${line}\n`);
  if (debugging()) {
    for (let c: unknown = e, i = 0; c !== undefined && c !== null && i < 5; c = (c as { cause?: unknown }).cause, i++) {
      process.stderr.write(`${c instanceof Error ? (c.stack ?? c.message) : String(c)}\n`);
    }
  }
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
