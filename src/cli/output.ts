/** How berth talks to people and scripts: progress on stderr, results on stdout. */
import { BerthError, ExitCode } from '../errors.ts';
import type { Reporter } from '../ops/context.ts';

const useColor = (stream: NodeJS.WriteStream) => stream.isTTY === true && !process.env['NO_COLOR'] && process.env['TERM'] !== 'dumb';

export function paint(stream: NodeJS.WriteStream, code: string, text: string): string {
  return useColor(stream) ? `\x1b[${code}m${text}\x1b[0m` : text;
}

export function stderrReporter(quiet: boolean): Reporter {
  return {
    step: (m) => {
      if (!quiet) process.stderr.write(`${paint(process.stderr, '2', m)}\n`);
    },
    warn: (m) => process.stderr.write(`${paint(process.stderr, '33', `berth: warning: ${m}`)}\n`),
  };
}

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
