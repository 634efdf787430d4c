/**
 * Install to active, inside a real systemd test host (test/harness/test-host.ts):
 * `berth install` of an image from the registry until its unit is active,
 * against what an operator does without berth: `skopeo copy` to an OCI
 * layout, `umoci unpack` to a bundle, a unit that runs the bundle with runc
 * the way berth's does (Type=forking, `runc run --detach --pid-file`,
 * Delegate=yes, the container's cgroup below the service's), then
 * `systemctl start` until the unit is active.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { TestHost } from '../test/harness/test-host.ts';
import { berthArgv } from './berth-argv.ts';
import { sum, timed, type Runner, type Sample } from './measure.ts';

export interface InstallSamples {
  /** berth install into a fresh root: pull, checkout, render, start. */
  berth: Sample[];
  skopeo: Sample[];
  umoci: Sample[];
  /** jq on umoci's config.json, the unit written, daemon-reload, systemctl start. */
  start: Sample[];
  /** skopeo + umoci + start. */
  anchor: Sample[];
}

export interface InstallBench {
  host: TestHost;
  /** Scratch directory (made if missing), visible inside the test host (under /tmp). */
  work: string;
  /** bin/berth.js of the build under test. */
  berthBin: string;
  /** docker://… reference of the image (its command must keep running). */
  ref: string;
  runs: number;
  cold: boolean;
  log: (msg: string) => void;
}

/** berth inside the test host runs the build it is given, never the sources. */
const HOST_ENV = { BERTH_FROM_SOURCE: '' };

/** A Runner for measure.ts: the command runs inside the test host. */
export function inHost(host: TestHost): Runner {
  return async (argv, options) => host.exec(argv[0]!, argv.slice(1), { env: HOST_ENV, timeoutMs: 600_000, ...(options.cwd ? { cwd: options.cwd } : {}) });
}

/** `berth --root ROOT ARGS…` inside the test host; throws with its stderr when it fails. */
export async function berthIn(host: TestHost, berthBin: string, root: string, ...args: string[]): Promise<string> {
  const r = await host.exec(process.execPath, [...berthArgv(berthBin), '--root', root, ...args], { env: HOST_ENV, timeoutMs: 600_000 });
  if (r.code !== 0) throw new Error(`berth ${args.join(' ')} failed (${r.code}): ${r.stderr.trim()}`);
  return r.stdout;
}

/** A policy.json in `dir` that accepts any image (trust has its own rows); returns its path. */
export function writePolicy(dir: string): string {
  const file = path.join(dir, 'policy.json');
  writeFileSync(file, JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }));
  return file;
}

/** The unit and runc invocation berth renders for $EXEC_START (src/render/unit-runtime.ts), written by hand. */
function anchorUnit(name: string, bundle: string): string {
  return `[Unit]
Description=bench: ${name} without berth (skopeo + umoci + runc)

[Service]
Type=forking
PIDFile=/run/${name}.pid
Delegate=yes
ExecStartPre=-runc delete --force ${name}
ExecStart=runc run --detach --pid-file /run/${name}.pid --bundle ${bundle} ${name}
ExecStopPost=-runc delete --force ${name}
`;
}

async function assertActive(host: TestHost, unit: string): Promise<void> {
  const state = await host.unitProperty(unit, 'ActiveState');
  if (state !== 'active') throw new Error(`${unit} is ${state} after its start, not active:\n${await host.journal(unit, 20)}`);
}

/** Interleaved rounds: berth, then the anchor; each one's unit removed again before the next. */
export async function installToActive(b: InstallBench): Promise<InstallSamples> {
  const { host, work, runs, cold } = b;
  const run = inHost(host);
  mkdirSync(work, { recursive: true });
  const policy = writePolicy(work);
  const s: InstallSamples = { berth: [], skopeo: [], umoci: [], start: [], anchor: [] };
  for (let r = 1; r <= runs; r++) {
    const name = 'bench-berth';
    const root = path.join(work, `berth-${r}`);
    b.log(`install to active, round ${r}/${runs}: berth install`);
    s.berth.push(
      await timed(work, process.execPath, [...berthArgv(b.berthBin), '--root', root, '--quiet', 'install', '--policy', policy, '--tls-verify=false', '--name', name, b.ref], { runner: run, cold }),
    );
    await assertActive(host, `${name}.service`);
    await berthIn(host, b.berthBin, root, '--quiet', 'uninstall', name);
    rmSync(root, { recursive: true, force: true });

    b.log(`install to active, round ${r}/${runs}: skopeo copy + umoci unpack + unit + systemctl start`);
    const anchor = 'bench-umoci';
    const dir = path.join(work, `umoci-${r}`);
    mkdirSync(dir);
    const bundle = path.join(dir, 'bundle');
    const sk = await timed(work, 'skopeo', ['copy', '--insecure-policy', '--src-tls-verify=false', b.ref, `oci:${dir}/oci:img`], { runner: run, cold });
    const um = await timed(work, 'umoci', ['unpack', '--image', `${dir}/oci:img`, bundle], { runner: run });
    // umoci's config.json asks for a terminal (no one to give it one when detached) and leaves
    // the cgroup to runc's default, outside the service: the two edits berth's renderer makes too.
    const script = [
      `jq --arg cg /system.slice/${anchor}.service/container '.process.terminal = false | .linux.cgroupsPath = $cg' "$1/config.json" > "$1/config.json.new"`,
      `mv "$1/config.json.new" "$1/config.json"`,
      `printf %s "$2" > /etc/systemd/system/${anchor}.service`,
      'systemctl daemon-reload',
      `systemctl start ${anchor}.service`,
    ].join(' && ');
    const st = await timed(work, 'sh', ['-c', script, 'sh', bundle, anchorUnit(anchor, bundle)], { runner: run });
    await assertActive(host, `${anchor}.service`);
    s.skopeo.push(sk);
    s.umoci.push(um);
    s.start.push(st);
    s.anchor.push(sum(sk, um, st));
    await host.systemctl('stop', `${anchor}.service`);
    rmSync(path.join(host.unitDir, `${anchor}.service`), { force: true });
    await host.systemctl('daemon-reload');
    rmSync(dir, { recursive: true, force: true });
  }
  return s;
}
