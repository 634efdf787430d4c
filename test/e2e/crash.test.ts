/**
 * The crash trials (test/crash/runner.ts) in small: every crash point once
 * (load, pull, save, install, update, rollback, uninstall, apply), then one
 * random-time SIGKILL per operation. After each kill `berth verify`
 * recovers and passes, the host is as before or after, and the command runs
 * again to completion. `npm run test:crash` runs 200 and more.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CRASH_POINTS } from '../../src/crashpoint.ts';
import { CRASH_OPS, runCrashTrials, uncovered } from '../crash/runner.ts';

describe('crash injection: SIGKILL anywhere, then recovery', () => {
  it('every kill point and a random kill per operation leave the host before or after, verify passing, re-runs completing', async () => {
    const summary = await runCrashTrials({ trials: CRASH_POINTS.length + CRASH_OPS.length, maxMinutes: 25, randomEvery: 1, log: () => undefined });
    const details = summary.failures.map((f) => `trial ${f.n} ${f.op} ${f.kill}: ${f.failure}`).join('\n\n');
    assert.equal(summary.failures.length, 0, `${summary.line}\n${details}`);
    assert.equal(summary.stoppedEarly, false, summary.line);
    assert.deepEqual(summary.pointsPassed, [...CRASH_POINTS], 'a crash point no operation of the runner passes');
    assert.deepEqual(uncovered(summary), [], `${summary.line}: these crash points were never reached`);
    for (const op of CRASH_OPS) assert.ok((summary.perOp[op] ?? 0) > 0, `no ${op} trial`);
  });
});
