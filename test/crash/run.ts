/**
 * npm run test:crash [-- --trials N --max-minutes M --random-every K --ops load,save]:
 * the crash trials of runner.ts (--ops: only those operations), one summary
 * line at the end, exit 1 on any failure (each failing trial is printed in
 * full above the summary).
 */
import { parseArgs } from 'node:util';
import { CRASH_OPS, runCrashTrials, uncovered, type CrashOp } from './runner.ts';

const { values } = parseArgs({
  options: {
    trials: { type: 'string', default: '200' },
    'max-minutes': { type: 'string', default: '60' },
    'random-every': { type: 'string', default: '3' },
    ops: { type: 'string' },
  },
});
const ops = values.ops?.split(',').map((o) => o.trim());
const unknown = ops?.filter((o) => !(CRASH_OPS as readonly string[]).includes(o)) ?? [];
if (ops?.length === 0 || unknown.length > 0) {
  process.stderr.write(`--ops: ${unknown.join(', ') || 'none'} not among ${CRASH_OPS.join(', ')}\n`);
  process.exit(2);
}
const summary = await runCrashTrials({
  trials: Number(values.trials),
  ...(ops ? { ops: ops as CrashOp[] } : {}),
  maxMinutes: Number(values['max-minutes']),
  randomEvery: Number(values['random-every']),
});
for (const f of summary.failures) process.stdout.write(`FAILED trial ${f.n}: ${f.op} ${f.kill}\n${f.failure}\n\n`);
const missing = uncovered(summary);
if (missing.length > 0) process.stdout.write(`kill points not reached: ${missing.join(', ')}\n`);
process.stdout.write(`${summary.line}\n`);
process.exitCode = summary.failures.length > 0 || summary.stoppedEarly ? 1 : 0;
