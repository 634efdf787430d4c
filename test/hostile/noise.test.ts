/**
 * The write checks on a busy machine: hostile cases (their check of the check
 * and a few refusals, each checked for writes outside berth's directories)
 * and a few crash trials pass while another process writes files into the
 * machine's real /tmp and /run all the time. Those writes are no concern of
 * berth's checks, which must read only what berth and its test host write.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { access, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runCrashTrials } from '../crash/runner.ts';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
/** The cases run under noise: the checks of the check, and refusals that would write to /etc, units and berth's root. */
const HOSTILE_FILE = 'test/hostile/templates.test.ts';
const HOSTILE_CASES = /check of the check|ignores what others write|leaves a string open|systemd's directories|symlinked parent/;
const NOISE = `berth-noise-${process.pid}-`;
const NOISE_DIRS = ['/tmp', '/run'];

/**
 * Rewrites a few files and a directory in each of `dirs`, over and over, until
 * killed. --pdeathsig: it dies with the test process, even a killed one.
 */
function startWriter(dirs: string[]): ChildProcess {
  const script = `
    i=0
    while :; do
      i=$(( (i + 1) % 8 ))
      for d in "$@"; do
        echo "$i" > "$d/${NOISE}$i"
        mkdir -p "$d/${NOISE}dir" && echo "$i" > "$d/${NOISE}dir/$i"
      done
      sleep 0.05
    done`;
  return spawn('setpriv', ['--pdeathsig', 'SIGKILL', '--', 'sh', '-c', script, 'noise', ...dirs], { stdio: 'ignore' });
}

async function removeNoise(): Promise<void> {
  for (const dir of NOISE_DIRS) {
    for (const name of await readdir(dir)) if (name.startsWith(NOISE)) await rm(path.join(dir, name), { recursive: true, force: true });
  }
}

describe('the write checks on a busy machine', () => {
  let writer: ChildProcess | undefined;

  before(() => {
    writer = startWriter(NOISE_DIRS);
  });

  after(async () => {
    if (writer && writer.exitCode === null && writer.signalCode === null) {
      const exited = once(writer, 'exit');
      writer.kill('SIGKILL');
      await exited;
    }
    await removeNoise();
  });

  /** The writer is still running and has written: the noise lasted the whole case. */
  const assertNoisy = async () => {
    assert.equal(writer?.exitCode, null, 'the writer is still running');
    assert.equal(writer?.signalCode, null, 'the writer is still running');
    for (const dir of NOISE_DIRS) await access(path.join(dir, `${NOISE}dir`));
  };

  it('hostile cases pass while others write to /tmp and /run', async () => {
    // A test runner of its own (NODE_TEST_CONTEXT would make it report to this one).
    const env = { ...process.env };
    delete env['NODE_TEST_CONTEXT'];
    const child = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', `--test-name-pattern=${HOSTILE_CASES.source}`, HOSTILE_FILE], {
      cwd: REPO,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
    const [code] = (await once(child, 'exit')) as [number | null];
    assert.equal(code, 0, out);
    // Each chosen case ran and passed (a pattern that matched nothing would pass too).
    const passed = (out.match(/^\s*ok \d+ - (?!hostile templates).*$/gm) ?? []).filter((l) => !l.includes('# SKIP'));
    assert.equal(passed.length, 5, out);
    assert.doesNotMatch(out, /^\s*not ok /m, out);
    await assertNoisy();
  });

  it('crash trials pass while others write to /tmp and /run', async () => {
    // The first crash points: three of pull, one of install.
    const summary = await runCrashTrials({ trials: 4, maxMinutes: 10, log: () => undefined });
    const details = summary.failures.map((f) => `trial ${f.n} ${f.op} ${f.kill}: ${f.failure}`).join('\n\n');
    assert.equal(summary.failures.length, 0, `${summary.line}\n${details}`);
    assert.equal(summary.trials.length, 4, summary.line);
    await assertNoisy();
  });
});
