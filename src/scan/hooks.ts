/**
 * External scanner hooks (like atomic's scan plugins): an executable the
 * operator names, run as `HOOK ROOTFS` (an argv, never through a shell),
 * with stdin closed and berth's environment. The contract (docs/scanning.md):
 *   exit 0 and, on stdout, exactly one JSON object
 *     {"findings": [{"id", "package", "installed", "fixed"?, "severity", "summary"?, "aliases"?}]}
 *   (severity one of unknown, low, medium, high, critical). Anything else
 *   fails the scan (SCAN_FAILED, fail closed): another exit status, a
 *   signal, output that is not that JSON (strict: unknown members, duplicate
 *   members, wrong types), stdout over the size limit, or running past the
 *   time limit (then the hook's whole process group is killed).
 * stderr is not part of the contract; its last line is shown when the hook fails.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { BerthError } from '../errors.ts';
import { isJsonObject, JsonSyntaxError, parseStrictJson, unexpectedMembers, type JsonValue } from '../strict-json.ts';
import type { Finding, Severity } from './types.ts';

export interface HookOptions {
  timeoutMs: number;
  /** stdout cap */
  maxOutputBytes: number;
}

export const DEFAULT_HOOK_TIMEOUT_MS = 300_000;
export const DEFAULT_HOOK_OPTIONS: HookOptions = { timeoutMs: DEFAULT_HOOK_TIMEOUT_MS, maxOutputBytes: 16 * 1024 * 1024 };

const SEVERITIES: readonly Severity[] = ['unknown', 'low', 'medium', 'high', 'critical'];
const MAX_STDERR = 4096;

function hookFailed(hook: string, why: string): BerthError {
  return new BerthError('SCAN_FAILED', `scanner hook ${hook} failed: ${why}`, { hint: 'see docs/scanning.md for the hook contract; a scan never approves when a hook fails' });
}

/** Run one hook on `rootfs` and return its findings (source "hook:NAME", not yet allowed by policy). */
export async function runHook(hook: string, rootfs: string, options: HookOptions = DEFAULT_HOOK_OPTIONS): Promise<Finding[]> {
  const name = path.basename(hook);
  const { code, signal, stdout, stderr, timedOut, overflow, spawnError } = await new Promise<{
    code: number | null;
    signal: NodeJS.Signals | null;
    stdout: Buffer;
    stderr: string;
    timedOut: boolean;
    overflow: boolean;
    spawnError?: Error;
  }>((resolve) => {
    const child = spawn(hook, [rootfs], { stdio: ['ignore', 'pipe', 'pipe'], detached: true, shell: false });
    const chunks: Buffer[] = [];
    let bytes = 0;
    let err = '';
    let timedOut = false;
    let overflow = false;
    let spawnError: Error | undefined;
    const killGroup = (): void => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone: nothing to kill
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup();
    }, options.timeoutMs);
    child.stdout.on('data', (c: Buffer) => {
      if (overflow) return;
      bytes += c.length;
      if (bytes > options.maxOutputBytes) {
        overflow = true;
        killGroup();
        return;
      }
      chunks.push(c);
    });
    child.stderr.on('data', (c: Buffer) => {
      err = (err + c.toString('utf8')).slice(-MAX_STDERR);
    });
    child.on('error', (e) => {
      spawnError = e;
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      // The hook's own children may still run in its group; they are not part of the contract.
      killGroup();
      resolve({ code, signal, stdout: Buffer.concat(chunks), stderr: err, timedOut, overflow, ...(spawnError === undefined ? {} : { spawnError }) });
    });
  });
  const lastLine = stderr.trim().split('\n').pop()?.slice(0, 300);
  const tail = lastLine ? ` (stderr: ${JSON.stringify(lastLine)})` : '';
  if (spawnError !== undefined) throw hookFailed(name, `cannot run ${hook}: ${spawnError.message}`);
  if (timedOut) throw hookFailed(name, `it ran longer than ${Math.round(options.timeoutMs / 1000)} s and was killed`);
  if (overflow) throw hookFailed(name, `it wrote more than ${options.maxOutputBytes} bytes to stdout`);
  if (signal !== null) throw hookFailed(name, `killed by ${signal}${tail}`);
  if (code !== 0) throw hookFailed(name, `exit status ${code}${tail}`);
  try {
    return parseHookOutput(parseStrictJson(stdout), `hook:${name}`);
  } catch (e) {
    if (e instanceof JsonSyntaxError || e instanceof HookOutputError) throw hookFailed(name, `invalid output: ${e.message}`);
    throw e;
  }
}

class HookOutputError extends Error {}

function text(v: JsonValue | undefined, what: string, max: number): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > max || /[\u0000-\u001f\u007f]/.test(v)) {
    throw new HookOutputError(`${what} must be a non-empty single-line string of at most ${max} characters`);
  }
  return v;
}

/** Validate a hook's output document strictly (see the contract above). */
export function parseHookOutput(doc: JsonValue, source: string): Finding[] {
  if (!isJsonObject(doc)) throw new HookOutputError('not a JSON object');
  const bad = unexpectedMembers(doc, ['findings']);
  if (bad !== undefined) throw new HookOutputError(bad);
  const list = doc['findings'];
  if (!Array.isArray(list)) throw new HookOutputError('"findings" must be an array');
  if (list.length > 100_000) throw new HookOutputError('more than 100000 findings');
  return list.map((f, i) => {
    const where = `findings[${i}]`;
    if (!isJsonObject(f)) throw new HookOutputError(`${where} is not an object`);
    const badMember = unexpectedMembers(f, ['id', 'package', 'installed', 'severity'], ['fixed', 'summary', 'aliases']);
    if (badMember !== undefined) throw new HookOutputError(`${where}: ${badMember}`);
    const severity = f['severity'];
    if (typeof severity !== 'string' || !(SEVERITIES as readonly string[]).includes(severity)) {
      throw new HookOutputError(`${where}.severity must be one of ${SEVERITIES.join(', ')}`);
    }
    const aliases = f['aliases'] ?? [];
    if (!Array.isArray(aliases) || aliases.length > 100) throw new HookOutputError(`${where}.aliases must be an array of at most 100 ids`);
    const fixed = f['fixed'];
    const summary = f['summary'];
    return {
      id: text(f['id'], `${where}.id`, 200),
      aliases: aliases.map((a, j) => text(a, `${where}.aliases[${j}]`, 200)),
      package: text(f['package'], `${where}.package`, 1000),
      installed: text(f['installed'], `${where}.installed`, 1000),
      ...(fixed === undefined ? {} : { fixed: text(fixed, `${where}.fixed`, 1000) }),
      severity: severity as Severity,
      ...(summary === undefined ? {} : { summary: text(summary, `${where}.summary`, 10_000) }),
      source,
      allowed: false,
    };
  });
}
