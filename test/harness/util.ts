/** Small helpers shared by the harness modules and tests. */
import { spawn, spawnSync } from 'node:child_process';

/** Resolves true when `p` settles, false after `ms`; the timer is cleared either way (no dangling timer keeps the test process alive). */
export function withTimeout(p: Promise<unknown>, ms: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    const done = (): void => {
      clearTimeout(timer);
      resolve(true);
    };
    p.then(done, done);
  });
}

/** Synchronous sleep, for process 'exit' handlers only. */
export function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Whether `command --version` runs here: for tests that skip without a host tool. */
export function hasCommand(command: string): boolean {
  return spawnSync(command, ['--version'], { stdio: 'ignore' }).status === 0;
}

export interface CommandRun {
  /** the exit status; 128 when killed by a signal */
  code: number;
  stdout: string;
  stderr: string;
}

/** Run `cmd` (in `cwd`, default ours) to its end whatever its exit status, collecting its output; SIGKILLed after `timeoutMs`. */
export function runCommand(cmd: string, args: string[], timeoutMs = 300_000, cwd?: string): Promise<CommandRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs, killSignal: 'SIGKILL', ...(cwd === undefined ? {} : { cwd }) });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code: code ?? 128, stdout, stderr }));
  });
}
