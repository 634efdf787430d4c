/**
 * Running a readiness probe (render/readiness.ts) until it passes or its
 * time is up: what `berth ready-check` does as a unit's ExecStartPost=.
 * Each attempt is bounded on its own, so one hung connection cannot eat the
 * whole budget; attempts back off from 100 ms to 1 s. When the unit's main
 * process dies meanwhile, systemd stops the start and kills the probe.
 */
import { spawn } from 'node:child_process';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { BerthError } from '../errors.ts';
import { containerCommand } from './exec.ts';
import { splitHostPort, type Readiness } from './readiness.ts';

const ATTEMPT_MS = 5_000;

export interface ProbeTarget {
  readiness: Readiness;
  /** For cmd probes: the runtime and the container to exec in. */
  runtime?: string;
  container?: string;
}

/** One attempt: resolves when ready, rejects with why not. */
function attempt(t: ProbeTarget, deadline: number): Promise<void> {
  const budget = Math.max(1, Math.min(ATTEMPT_MS, deadline - Date.now()));
  const { kind, target } = t.readiness;
  if (kind === 'tcp') {
    const { host, port } = splitHostPort(target)!;
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host, port, timeout: budget });
      socket.once('connect', () => (socket.destroy(), resolve()));
      socket.once('timeout', () => (socket.destroy(), reject(new Error(`no answer from ${target} within ${budget} ms`))));
      socket.once('error', (e) => reject(new Error(`${target}: ${(e as NodeJS.ErrnoException).code ?? e.message}`)));
    });
  }
  if (kind === 'http') {
    const get = target.startsWith('https:') ? https.get : http.get;
    return new Promise((resolve, reject) => {
      const req = get(target, { timeout: budget, headers: { 'user-agent': 'berth-ready-check' } }, (res) => {
        res.resume();
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 400) resolve();
        else reject(new Error(`${target}: HTTP ${status}`));
      });
      req.once('timeout', () => req.destroy(new Error(`no answer from ${target} within ${budget} ms`)));
      req.once('error', (e) => reject(new Error(`${target}: ${(e as NodeJS.ErrnoException).code ?? e.message}`)));
    });
  }
  if (t.runtime === undefined || t.container === undefined) throw new BerthError('USAGE', 'a cmd probe needs --runtime and --container', { hint: 'berth writes these into the unit itself' });
  return containerCommand(t.runtime, t.container, ['/bin/sh', '-c', target]).then((cmd) => runProbe(cmd.argv, cmd.env, target, budget, t.runtime!));
}

function runProbe(argv: readonly string[], env: Record<string, string> | undefined, target: string, budget: number, runtime: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'], timeout: budget, killSignal: 'SIGKILL', ...(env === undefined ? {} : { env }) });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-500)));
    child.once('error', (e) => reject(new Error(`${runtime}: ${e.message}`)));
    child.once('close', (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`${JSON.stringify(target)} ${signal ? `killed by ${signal}` : `exited ${code}`}${stderr.trim() ? `: ${stderr.trim().split('\n').pop()}` : ''}`));
    });
  });
}

/** Probe until ready; throws START_FAILED with the last failure once the timeout has passed. */
export async function waitReady(t: ProbeTarget, onAttempt?: (n: number, why: string) => void): Promise<number> {
  const started = Date.now();
  const deadline = started + t.readiness.timeoutSec * 1000;
  let delay = 100;
  for (let n = 1; ; n++) {
    try {
      await attempt(t, deadline);
      return n;
    } catch (e) {
      if (e instanceof BerthError) throw e;
      const why = (e as Error).message;
      onAttempt?.(n, why);
      if (Date.now() + delay >= deadline) {
        throw new BerthError('START_FAILED', `not ready after ${t.readiness.timeoutSec} s (${n} attempts): ${why}`, {
          hint: `the ${t.readiness.kind} probe ${t.readiness.target} never passed; see the journal of the unit`,
        });
      }
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(1000, delay * 2);
    }
  }
}
