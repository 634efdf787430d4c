/**
 * TestGluster: a real GlusterFS volume for tests of the shared store
 * (Debian's glusterfs-server and glusterfs-client; FUSE).
 *
 * One glusterd runs in the foreground (-N, so this process owns it, with
 * setpriv --pdeathsig as the registry), its working, run and log directories
 * in a fresh temp dir; a one-brick volume on 127.0.1.1 (glusterd refuses
 * 127.0.0.1 and localhost for bricks) is mounted twice: read-write at
 * `rw` (the publisher's side) and read-only at `ro` (the hosts' side).
 *
 * Mount in the test process's namespace BEFORE booting test hosts: a test
 * host's mount namespace is a private copy made at its boot (test-host.sh
 * uses --propagation private), so it then holds its own copy of the `ro`
 * mount at the same path (served by the same FUSE client), and unmounting it
 * inside one host (`umount` through TestHost.exec) leaves the others alone.
 *
 * What glusterd does not let us move, and how stop() puts the host back:
 *  - its TCP port is fixed (24007: bricks and clients ask glusterd there for
 *    their volfiles whatever listen-port says), so one TestGluster at a time
 *    per machine; start() refuses when the port is taken;
 *  - the brick's unix socket goes to /var/run/gluster/, and glusterd creates
 *    /var/run/gluster/snaps, /var/lib/glusterd/{geo-replication,ss_brick};
 *    the CLI logs to /var/log/glusterfs/cli.log unless told otherwise:
 *    stop() removes every entry of those directories that was not there
 *    before start() (what the package ships is left alone).
 * Processes: glusterd (ours), the brick's glusterfsd and the FUSE clients
 * (both daemonize, reparented away from us): all carry the temp dir in their
 * command line, which is how stop() finds and kills what is left.
 */
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import { mkdtemp, readFile, writeFile, mkdir } from 'node:fs/promises';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { sleepSync, withTimeout } from './util.ts';

export const GLUSTER_HOST = '127.0.1.1';
const GLUSTERD_PORT = 24007;
/** How long start() waits for another glusterd on the machine to go away. */
const PORT_WAIT_MS = 8 * 60_000; // within the suite's 10-minute test timeout
const READY_TIMEOUT_MS = 30_000;
const CLI_TIMEOUT_MS = 120_000;
/** Host directories glusterd or its CLI write into whatever they are told. */
const HOST_DIRS = ['/var/run/gluster', '/var/lib/glusterd', '/var/log/glusterfs'];

export interface TestGlusterOptions {
  /** Volume name; default "berthshare". */
  volume?: string;
}

/** Started and not stopped yet: killed by the process 'exit' handler. */
const live = new Set<TestGluster>();
let exitHandlerInstalled = false;
function installExitHandler(): void {
  if (exitHandlerInstalled) return;
  exitHandlerInstalled = true;
  process.on('exit', () => {
    for (const g of live) g.emergencyStopSync();
  });
}

function listEntries(dir: string): Set<string> {
  try {
    return new Set(fs.readdirSync(dir));
  } catch {
    return new Set();
  }
}

/** PIDs whose command line mentions `needle` (our temp dir is unique). */
export function processesMentioning(needle: string): number[] {
  const out: number[] = [];
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${e}/cmdline`, 'utf8');
      if (cmd.includes(needle)) out.push(Number(e));
    } catch {
      /* gone meanwhile */
    }
  }
  return out;
}

/** Mount points (this namespace) at or below `dir`. */
export function mountsUnder(dir: string): string[] {
  const text = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const mp = line.split(' ')[4];
    if (mp === undefined) continue;
    const p = mp.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    if (p === dir || p.startsWith(`${dir}/`)) out.push(p);
  }
  return out;
}

function portTaken(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port, timeout: 1_000 });
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('timeout', () => (s.destroy(), resolve(false)));
    s.once('error', () => resolve(false));
  });
}

function run(cmd: string, args: readonly string[], timeoutMs = CLI_TIMEOUT_MS): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 4 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')} failed: ${String(stderr).trim() || String(stdout).trim() || err.message}`));
      else resolve(String(stdout));
    });
  });
}

export class TestGluster {
  /** temp dir: glusterd.vol, lib/ (working dir), run/, log/, brick/, rw/, ro/ */
  readonly dir: string;
  readonly volume: string;
  /** the read-write mount (publisher) */
  readonly rw: string;
  /** the read-only mount (hosts) */
  readonly ro: string;

  #child: ChildProcess | undefined;
  #exited: Promise<void> = Promise.resolve();
  #done = true;
  #stopping: Promise<void> | undefined;
  readonly #before: Map<string, Set<string>>;

  private constructor(dir: string, volume: string, before: Map<string, Set<string>>) {
    this.dir = dir;
    this.volume = volume;
    this.rw = path.join(dir, 'rw');
    this.ro = path.join(dir, 'ro');
    this.#before = before;
  }

  get #sock(): string {
    return path.join(this.dir, 'run', 'glusterd.socket');
  }

  /** The gluster CLI against our glusterd, logging into our dir. */
  cli(...args: string[]): Promise<string> {
    return run('gluster', [`--glusterd-sock=${this.#sock}`, `--log-file=${path.join(this.dir, 'log', 'cli.log')}`, '--mode=script', ...args]);
  }

  static async start(options: TestGlusterOptions = {}): Promise<TestGluster> {
    installExitHandler();
    // glusterd's port and its host directories are machine-wide: one TestGluster at a time.
    // Another one (a bench, another test run) is waited for, not failed on: the machine may be busy.
    const freeBy = Date.now() + PORT_WAIT_MS;
    while (await portTaken(GLUSTER_HOST, GLUSTERD_PORT)) {
      if (Date.now() > freeBy) throw new Error(`TestGluster: ${GLUSTER_HOST}:${GLUSTERD_PORT} stayed taken for ${PORT_WAIT_MS / 60_000} min (another glusterd runs; only one TestGluster per machine)`);
      await sleep(2_000);
    }
    const before = new Map(HOST_DIRS.map((d) => [d, listEntries(d)] as const));
    const dir = await mkdtemp(path.join(os.tmpdir(), 'berth-gl-'));
    const g = new TestGluster(dir, options.volume ?? 'berthshare', before);
    live.add(g);
    try {
      await g.#start();
      return g;
    } catch (e) {
      const logs = await g.#logTail();
      await g.stop();
      throw new Error(`${(e as Error).message}\n${logs}`);
    }
  }

  async #logTail(): Promise<string> {
    const tail = async (f: string) => (await readFile(f, 'utf8').catch(() => '')).split('\n').slice(-15).join('\n');
    return `--- glusterd.log\n${await tail(path.join(this.dir, 'log', 'glusterd.log'))}`;
  }

  async #start(): Promise<void> {
    const d = this.dir;
    for (const sub of ['lib', 'run', 'log', 'brick', 'rw', 'ro']) await mkdir(path.join(d, sub));
    const vol = [
      'volume management',
      '    type mgmt/glusterd',
      `    option working-directory ${d}/lib`,
      `    option run-directory ${d}/run`,
      `    option logging-directory ${d}/log`,
      `    option glusterd-sockfile ${this.#sock}`,
      '    option transport-type socket',
      `    option transport.socket.bind-address ${GLUSTER_HOST}`,
      '    option ping-timeout 0',
      '    option event-threads 1',
      'end-volume',
      '',
    ].join('\n');
    await writeFile(path.join(d, 'glusterd.vol'), vol);
    const child = spawn(
      'setpriv',
      ['--pdeathsig', 'SIGKILL', '--', 'glusterd', '-N', '-f', path.join(d, 'glusterd.vol'), '-l', path.join(d, 'log', 'glusterd.log'), '--log-level', 'WARNING'],
      { stdio: 'ignore' },
    );
    child.unref();
    this.#child = child;
    this.#done = false;
    this.#exited = new Promise<void>((resolve) => {
      const done = (): void => {
        this.#done = true;
        resolve();
      };
      child.once('exit', done);
      child.once('error', done);
    });
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      if (this.#done) throw new Error('TestGluster: glusterd exited at start');
      try {
        await this.cli('volume', 'list');
        break;
      } catch (e) {
        if (Date.now() > deadline) throw new Error(`TestGluster: glusterd not ready after ${READY_TIMEOUT_MS} ms: ${(e as Error).message}`);
        await sleep(200);
      }
    }
    await this.cli('volume', 'create', this.volume, `${GLUSTER_HOST}:${path.join(d, 'brick', this.volume)}`, 'force');
    // A berth store links one object wherever it appears (busybox's ~300 applet symlinks are
    // one object). GlusterFS refuses the 101st link to an inode (max-hardlinks), and each link
    // adds a trusted.gfid2path xattr to the brick's inode until ext4's xattr block is full
    // (ENOSPC after ~90 links): lift the limit and turn gfid2path (used by geo-replication) off.
    await this.cli('volume', 'set', this.volume, 'storage.max-hardlinks', '0');
    await this.cli('volume', 'set', this.volume, 'storage.gfid2path', 'off');
    await this.cli('volume', 'start', this.volume);
    await this.mount(this.rw, false);
    await this.mount(this.ro, true);
  }

  /** Mount the volume at `dir` (in this process's namespace); read-only with `ro`. */
  async mount(dir: string, ro: boolean): Promise<void> {
    const log = path.join(this.dir, 'log', `mount-${path.basename(dir)}-${Date.now()}.log`);
    await run('mount', ['-t', 'glusterfs', '-o', `${ro ? 'ro,' : ''}log-file=${log}`, `${GLUSTER_HOST}:/${this.volume}`, dir]);
  }

  /** The PID of the FUSE client serving the mount at `dir` (for tests that hang it with SIGSTOP). */
  clientPid(dir: string): number | undefined {
    return processesMentioning(this.dir).find((pid) => {
      const args = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      return args[0]?.endsWith('glusterfs') === true && args.includes(dir);
    });
  }

  /**
   * Unmount, stop the volume, stop glusterd, kill whatever still mentions the
   * temp dir, remove it and what glusterd left in the host's directories.
   * Safe to call twice; also after a failed start.
   */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      // SIGCONT first: a test may have stopped a FUSE client to hang the share.
      for (const pid of processesMentioning(this.dir)) {
        try {
          process.kill(pid, 'SIGCONT');
        } catch {
          /* gone */
        }
      }
      for (const mp of mountsUnder(this.dir).reverse()) {
        await run('umount', [mp], 30_000).catch(() => run('umount', ['-l', mp], 30_000).catch(() => undefined));
      }
      if (!this.#done) {
        await this.cli('volume', 'stop', this.volume, 'force').catch(() => undefined);
        this.#child?.kill('SIGTERM');
        await withTimeout(this.#exited, 5_000);
        if (!this.#done) {
          this.#child?.kill('SIGKILL');
          await this.#exited;
        }
      }
      await this.#killLeftovers();
      live.delete(this);
      this.#restoreHostDirs();
      spawnSync('rm', ['-rf', '--one-file-system', '--', this.dir]);
    })();
    return this.#stopping;
  }

  async #killLeftovers(): Promise<void> {
    for (let i = 0; i < 50; i++) {
      const pids = processesMentioning(this.dir);
      if (pids.length === 0) return;
      for (const pid of pids) {
        try {
          process.kill(pid, i === 0 ? 'SIGTERM' : 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      await sleep(100);
    }
  }

  /** Remove what glusterd and its CLI added to the host's gluster directories. */
  #restoreHostDirs(): void {
    for (const [d, before] of this.#before) {
      for (const e of listEntries(d)) {
        if (!before.has(e)) spawnSync('rm', ['-rf', '--one-file-system', '--', path.join(d, e)]);
      }
    }
  }

  /** Synchronous best-effort cleanup, for the process 'exit' handler. */
  emergencyStopSync(): void {
    live.delete(this);
    for (const pid of processesMentioning(this.dir)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    sleepSync(200);
    for (const mp of mountsUnder(this.dir).reverse()) spawnSync('umount', ['-l', mp]);
    this.#restoreHostDirs();
    spawnSync('rm', ['-rf', '--one-file-system', '--', this.dir]);
  }
}
