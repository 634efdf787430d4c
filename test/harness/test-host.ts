/**
 * TestHost: a real, throw-away systemd (PID 1 of private pid+mount+cgroup+uts+ipc
 * namespaces) for end-to-end tests on a host whose own PID 1 is not systemd.
 *
 * The namespace plumbing lives in ./test-host.sh (read its header); this file creates and
 * removes the cgroup dirs and the scratch dir, boots and stops the host, runs commands inside
 * and checks that nothing is left behind.
 *
 * Inside the test host, processes started with exec() see the test host's /run (system bus,
 * systemd, runc state), /dev and /etc/systemd/system, and the host's /etc, /var, /tmp, /work,
 * node and network. Requires root, util-linux (unshare, nsenter, setpriv) and systemd.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { mkdtemp, readFile, readdir, writeFile, mkdir, rmdir, access } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { sleepSync, withTimeout } from './util.ts';

export interface TestHostOptions {
  /** name for cgroup dirs; default unique 'berth-test-<random>' */
  cgroupName?: string;
}

export interface ExecOptions {
  /** merged over process.env and {@link TestHost.env} */
  env?: Record<string, string>;
  /** written to the command's stdin (stdin is closed right away otherwise) */
  input?: string;
  /** kill the command (its whole process group) and reject after this long; default 30 s */
  timeoutMs?: number;
  /** working directory inside (same paths as on the host for /work, /tmp...); default process.cwd() */
  cwd?: string;
}

export interface ExecResult {
  /** exit code, or 128 + signal number if the command was killed by a signal */
  code: number;
  stdout: string;
  stderr: string;
}

const SCRIPT = fileURLToPath(new URL('./test-host.sh', import.meta.url));
/** Environment that processes inside need to reach the test host's system bus. */
const INSIDE_ENV: Readonly<Record<string, string>> = Object.freeze({
  DBUS_SYSTEM_BUS_ADDRESS: 'unix:path=/run/dbus/system_bus_socket',
});
/** glibc's SIGRTMIN is 34 on Linux; SIGRTMIN+14 = systemd's "immediate poweroff". */
const SIG_IMMEDIATE_POWEROFF = 34 + 14;
const BOOT_TIMEOUT_MS = 30_000;
/** How long stop() lets systemd shut down before it SIGKILLs PID 1 (which kills the pid ns). */
const POWEROFF_GRACE_MS = 3_000;
const EXEC_DEFAULT_TIMEOUT_MS = 30_000;
const BOOT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

interface CgroupMount {
  mountpoint: string;
  /** super options, e.g. "rw,cpu" or "rw,name=systemd" (v1) */
  superOptions: string;
  v2: boolean;
}

/** Decode the octal escapes (\040 etc.) of /proc/self/mountinfo fields. */
function unescapeMountField(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

interface MountInfo {
  root: string;
  mountpoint: string;
  fstype: string;
  source: string;
  superOptions: string;
}

function readMountInfo(file = '/proc/self/mountinfo'): MountInfo[] {
  const out: MountInfo[] = [];
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line) continue;
    const f = line.split(' ');
    const sep = f.indexOf('-', 6);
    if (sep < 0) continue;
    out.push({
      root: unescapeMountField(f[3] ?? ''),
      mountpoint: unescapeMountField(f[4] ?? ''),
      fstype: f[sep + 1] ?? '',
      source: unescapeMountField(f[sep + 2] ?? ''),
      superOptions: f[sep + 3] ?? '',
    });
  }
  return out;
}

function cgroupMounts(): CgroupMount[] {
  const v1: CgroupMount[] = [];
  let v2: CgroupMount | undefined;
  for (const m of readMountInfo()) {
    if (m.fstype === 'cgroup') v1.push({ mountpoint: m.mountpoint, superOptions: m.superOptions, v2: false });
    else if (m.fstype === 'cgroup2' && !v2) v2 = { mountpoint: m.mountpoint, superOptions: m.superOptions, v2: true };
  }
  return v2 ? [...v1, v2] : v1;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function childrenOf(pid: number): number[] {
  try {
    return fs
      .readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

function cmdlineOf(pid: number | string): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
  } catch {
    return '?';
  }
}

function tail(text: string, lines: number): string {
  return text.split('\n').slice(-lines).join('\n');
}

/** rm -rf that does not cross into other filesystems (never deletes through a leaked bind mount). */
function rmTreeArgs(dir: string): string[] {
  return ['-rf', '--one-file-system', '--', dir];
}

/** Test hosts not stopped yet: killed by the process 'exit' handler. */
const live = new Set<TestHost>();
let exitHandlerInstalled = false;
function installExitHandler(): void {
  if (exitHandlerInstalled) return;
  exitHandlerInstalled = true;
  process.on('exit', () => {
    for (const h of live) h.emergencyStopSync();
  });
}

export class TestHost {
  /** host path of the scratch dir */
  readonly base: string;
  /** name of the cgroup dirs at the root of every host cgroup hierarchy */
  readonly cgroupName: string;
  /**
   * Environment (inside paths) for processes run inside; exec() sets it. Use
   * {@link hostBusAddress} to reach the same bus from the host.
   */
  readonly env: Readonly<Record<string, string>> = INSIDE_ENV;

  #pid = 0;
  #launcher: ChildProcess | undefined;
  #launcherExited: Promise<void> | undefined;
  #launcherDone = false;
  #launcherStatus = '';
  #pidnsFd: number | undefined;
  #pidnsIno: number | undefined;
  #stopping: Promise<void> | undefined;
  /** <mp>/<cgroupName> dirs this instance created (and only these are removed) */
  #cgroupRoots: string[] = [];

  private constructor(base: string, cgroupName: string) {
    this.base = base;
    this.cgroupName = cgroupName;
  }

  /** host PID of the namespaced systemd (its PID 1) */
  get pid(): number {
    return this.#pid;
  }

  /** The test host's system bus, addressed from the host (e.g. for dbus-next in the test process). */
  get hostBusAddress(): string {
    return `unix:path=${this.base}/run/dbus/system_bus_socket`;
  }

  /** journalctl -D argument: the test host's volatile journal, on the host. */
  get journalDir(): string {
    return path.join(this.base, 'run/log/journal');
  }

  /**
   * Where a file that a process inside wrote under /etc, /usr/local or /var is kept on
   * the host (the copy-on-write overlay's upper dir); undefined for other paths.
   */
  overlayPath(insidePath: string): string | undefined {
    const top = ['/usr/local', '/etc', '/var'].find((d) => insidePath === d || insidePath.startsWith(`${d}/`));
    if (top === undefined) return undefined;
    return path.join(this.base, 'overlay', top.replace(/\//g, '_'), 'upper', insidePath.slice(top.length));
  }

  /** Host dir bind-mounted on /etc/systemd/system inside. */
  get unitDir(): string {
    return path.join(this.base, 'etc-systemd-system');
  }

  static async start(options: TestHostOptions = {}): Promise<TestHost> {
    const cgroupName = options.cgroupName ?? `berth-test-${randomBytes(4).toString('hex')}`;
    if (!/^[A-Za-z0-9][A-Za-z0-9_.@-]*$/.test(cgroupName)) {
      throw new Error(`TestHost: invalid cgroupName ${JSON.stringify(cgroupName)}`);
    }
    const base = await mkdtemp(path.join(os.tmpdir(), 'bth-'));
    const sock = `${base}/run/systemd/journal/io.systemd.journal`; // the longest socket path systemd uses here
    const host = new TestHost(base, cgroupName);
    live.add(host);
    installExitHandler();
    try {
      if (Buffer.byteLength(sock) >= 108) throw new Error(`TestHost: base dir ${base} too long for unix socket paths`);
      await host.#boot();
    } catch (e) {
      await host.stop().catch(() => {});
      throw e;
    }
    return host;
  }

  async #boot(): Promise<void> {
    const { base, cgroupName } = this;
    const mounts = cgroupMounts();
    if (mounts.length === 0) throw new Error('TestHost: no cgroup hierarchies mounted on the host');

    // <mp>/<name> becomes the test host's root cgroup (cgroup namespace) in every hierarchy.
    // (test-host.sh creates <mp>/<name>/harness-exec for exec()'d processes on first use.)
    for (const m of mounts) {
      const dir = path.join(m.mountpoint, cgroupName);
      try {
        await mkdir(dir);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EEXIST') {
          throw new Error(`TestHost: cgroup ${dir} exists (a leftover of an earlier run, or a name in use)`);
        }
        throw e;
      }
      this.#cgroupRoots.push(dir);
      if (!m.v2 && m.superOptions.split(',').includes('cpuset')) {
        // v1 cpuset: children start with no cpus/mems, and then nothing can join them
        for (const f of ['cpuset.cpus', 'cpuset.mems']) {
          await writeFile(path.join(dir, f), await readFile(path.join(m.mountpoint, f), 'utf8'));
        }
      }
    }
    const v1 = mounts.filter((m) => !m.v2);
    const v2 = mounts.find((m) => m.v2);
    await writeFile(path.join(base, 'cgroups.list'), v1.map((m) => `${m.mountpoint} ${m.superOptions}\n`).join(''));
    await writeFile(path.join(base, 'cgroup2.mp'), v2 ? `${v2.mountpoint}\n` : '');
    const links: string[] = [];
    for (const e of await readdir('/sys/fs/cgroup', { withFileTypes: true })) {
      if (e.isSymbolicLink()) links.push(`${e.name} ${fs.readlinkSync(path.join('/sys/fs/cgroup', e.name))}\n`);
    }
    await writeFile(path.join(base, 'cgroup-links.list'), links.join(''));

    // Debug knobs of test-host.sh pass through: TH_LOG_LEVEL=debug, TH_LOG_TARGET=console
    // (systemd's log then goes to <base>/systemd.log), TH_SYSTEMD_BIN.
    const knobs = Object.fromEntries(
      ['TH_LOG_LEVEL', 'TH_LOG_TARGET', 'TH_SYSTEMD_BIN'].flatMap((k) => (process.env[k] ? [[k, process.env[k]]] : [])),
    ) as Record<string, string>;
    const scriptEnv = { PATH: BOOT_PATH, ...knobs, TH_BASE: base, TH_CGROUP: cgroupName };
    const prep = spawnSync('bash', [SCRIPT, 'prepare'], { env: scriptEnv, encoding: 'utf8' });
    if (prep.status !== 0) throw new Error(`TestHost: prepare failed: ${prep.stderr}`);

    // The launcher: setpriv --pdeathsig kills it if this process dies; it then kills
    // systemd (unshare --kill-child), and PID 1's death kills the whole pid namespace.
    // detached = own session, so terminal signals to the test do not hit systemd.
    // systemd gets a minimal environment, as on a real boot.
    const logFd = fs.openSync(path.join(base, 'systemd.log'), 'a');
    let launcher: ChildProcess;
    try {
      launcher = spawn('setpriv', ['--pdeathsig', 'SIGKILL', '--', 'bash', SCRIPT, 'launch'], {
        env: scriptEnv,
        detached: true,
        stdio: ['ignore', logFd, logFd],
      });
    } finally {
      fs.closeSync(logFd);
    }
    this.#launcher = launcher;
    this.#launcherExited = new Promise<void>((resolve) => {
      launcher.once('exit', (code, signal) => {
        this.#launcherDone = true;
        this.#launcherStatus = signal ? `signal ${signal}` : `code ${code}`;
        resolve();
      });
      launcher.once('error', () => {
        this.#launcherDone = true;
        resolve();
      });
    });
    launcher.unref(); // a forgotten stop() must not keep the test process alive; 'exit' cleans up
    if (launcher.pid === undefined) {
      await this.#launcherExited;
      throw new Error('TestHost: could not spawn the launcher (setpriv/bash missing?)');
    }
    await writeFile(path.join(base, 'launcher.pid'), `${launcher.pid}\n`);

    const deadline = Date.now() + BOOT_TIMEOUT_MS;
    let state = '';
    let probeError = '';
    for (;;) {
      if (this.#launcherDone) throw await this.#bootError(`the launcher exited during boot (${this.#launcherStatus || 'spawn error'})`);
      if (!this.#pid) {
        // setpriv -> bash -> unshare keep the PID; unshare's only child is PID 1 inside
        const [child] = childrenOf(launcher.pid);
        if (child && cmdlineOf(launcher.pid).startsWith('unshare ')) {
          this.#pid = child;
          try {
            // Holding the pid namespace open keeps its inode number from being reused
            // (by another test host) until assertClean() has looked for leftovers.
            this.#pidnsFd = fs.openSync(`/proc/${child}/ns/pid`, 'r');
            this.#pidnsIno = fs.fstatSync(this.#pidnsFd).ino;
          } catch {
            /* raced with an early exit: reported by the loop */
          }
        }
      }
      if (this.#pid && fs.existsSync(path.join(base, 'run/systemd/private'))) {
        const r = await this.exec('systemctl', ['is-system-running'], { timeoutMs: 5_000 }).catch(
          (e: unknown): ExecResult => ({ code: -1, stdout: '', stderr: String(e) }),
        );
        state = r.stdout.trim() || state;
        probeError = r.stderr.trim();
        if ((state === 'running' || state === 'degraded') && fs.existsSync(path.join(base, 'run/dbus/system_bus_socket'))) {
          return;
        }
      }
      if (Date.now() > deadline) throw await this.#bootError(
          `boot timeout after ${BOOT_TIMEOUT_MS} ms (state=${state || '?'}${probeError ? `; systemctl: ${probeError}` : ''})`,
        );
      await sleep(100);
    }
  }

  async #bootError(what: string): Promise<Error> {
    let log = '';
    try {
      log = tail(await readFile(path.join(this.base, 'systemd.log'), 'utf8'), 40);
    } catch {
      /* no log */
    }
    let journal = '';
    if (fs.existsSync(this.journalDir)) {
      const j = spawnSync('journalctl', ['-D', this.journalDir, '--no-pager', '-n', '40'], { encoding: 'utf8' });
      journal = (j.stdout || j.stderr || '').trim();
    }
    return new Error(
      `TestHost ${this.cgroupName} (${this.base}): ${what}\n` +
        `--- systemd.log (tail) ---\n${log.trim() || '(empty)'}\n` +
        `--- journal (tail) ---\n${journal || '(none)'}`,
    );
  }

  /** Run a command inside the test host's namespaces (nsenter -t pid -m -p -C -u -i), like on a real host. */
  exec(cmd: string, args: string[], opts: ExecOptions = {}): Promise<ExecResult> {
    if (!this.#pid || this.#stopping) {
      return Promise.reject(new Error(`TestHost ${this.cgroupName}: not running`));
    }
    const timeoutMs = opts.timeoutMs ?? EXEC_DEFAULT_TIMEOUT_MS;
    return new Promise<ExecResult>((resolve, reject) => {
      const child = spawn('bash', [SCRIPT, 'enter', '--', cmd, ...args], {
        env: {
          ...process.env,
          ...INSIDE_ENV,
          ...opts.env,
          // read and unset by test-host.sh before it runs nsenter
          TH_BASE: this.base,
          TH_CGROUP: this.cgroupName,
          TH_PID: String(this.#pid),
          TH_CWD: opts.cwd ?? process.cwd(),
        },
        detached: true, // own process group: a timeout kills nsenter and the command inside
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      child.stdin.on('error', () => {}); // EPIPE if the command does not read its input
      child.stdin.end(opts.input ?? '');
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        try {
          if (child.pid) process.kill(-child.pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }, timeoutMs);
      child.once('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      child.once('close', (code, signal) => {
        clearTimeout(timer);
        if (timedOut) {
          reject(
            new Error(
              `TestHost exec timed out after ${timeoutMs} ms: ${[cmd, ...args].join(' ')}\n` +
                `stdout: ${tail(stdout, 20)}\nstderr: ${tail(stderr, 20)}`,
            ),
          );
          return;
        }
        const sig = signal ? (os.constants.signals[signal] ?? 0) : 0;
        resolve({ code: code ?? 128 + sig, stdout, stderr });
      });
    });
  }

  systemctl(...args: string[]): Promise<ExecResult> {
    return this.exec('systemctl', args);
  }

  /** `systemctl show -p Prop --value unit` */
  async unitProperty(unit: string, prop: string): Promise<string> {
    const r = await this.systemctl('show', '-p', prop, '--value', unit);
    if (r.code !== 0) throw new Error(`systemctl show -p ${prop} ${unit} failed (${r.code}): ${r.stderr.trim()}`);
    return r.stdout.replace(/\n$/, '');
  }

  /** The last `lines` journal lines of `unit` (journalctl -D <base>/run/log/journal -u unit, on the host). */
  async journal(unit: string, lines = 100): Promise<string> {
    // ask journald to write out what it has received so far (best effort)
    if (this.#pid && !this.#stopping) await this.exec('journalctl', ['--sync'], { timeoutMs: 5_000 }).catch(() => {});
    return new Promise<string>((resolve, reject) => {
      const child = spawn('journalctl', ['-D', this.journalDir, '-u', unit, '-n', String(lines), '--no-pager', '-q'], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
      child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
      child.once('error', reject);
      child.once('close', (code) => {
        if (code === 0) resolve(out);
        else reject(new Error(`journalctl -D ${this.journalDir} -u ${unit} failed (${code}): ${err.trim()}`));
      });
    });
  }

  /** Immediate poweroff, wait, remove cgroups, remove base dir. Safe to call twice. */
  stop(): Promise<void> {
    this.#stopping ??= this.#doStop();
    return this.#stopping;
  }

  /**
   * Power the test host off and boot it again on the same disk: /etc/systemd/system and
   * the /etc, /usr/local, /var overlays persist, /run starts empty (as after a real
   * reboot), and systemd brings back what is enabled.
   */
  async reboot(): Promise<void> {
    if (this.#stopping) throw new Error(`TestHost ${this.cgroupName}: stopped`);
    await this.#powerOff();
    this.#pid = 0;
    this.#launcher = undefined;
    this.#launcherExited = undefined;
    this.#launcherDone = false;
    this.#launcherStatus = '';
    if (this.#pidnsFd !== undefined) fs.closeSync(this.#pidnsFd);
    this.#pidnsFd = undefined;
    this.#pidnsIno = undefined;
    this.#cgroupRoots = [];
    spawnSync('rm', rmTreeArgs(path.join(this.base, 'run')));
    live.add(this);
    await this.#boot();
  }

  async #doStop(): Promise<void> {
    await this.#powerOff();
    // --one-file-system: never delete through a leaked mount (assertClean() reports it)
    spawnSync('rm', rmTreeArgs(this.base));
  }

  async #powerOff(): Promise<void> {
    const launcher = this.#launcher;
    if (launcher?.pid !== undefined && !this.#launcherDone) {
      // Only signal systemd while it is still the launcher's child: its PID cannot have
      // been reused then. (We have not reaped the launcher, so its PID is safe too.)
      const pid1 = this.#pid && childrenOf(launcher.pid).includes(this.#pid) ? this.#pid : 0;
      if (pid1) {
        try {
          process.kill(pid1, SIG_IMMEDIATE_POWEROFF);
        } catch {
          /* gone */
        }
      }
      if (!(await this.#waitLauncher(pid1 ? POWEROFF_GRACE_MS : 0))) {
        // Slow shutdown (systemd-shutdown waits for processes that ignore SIGTERM, e.g. a
        // container whose PID 1 is a plain `sleep`): SIGKILL PID 1, and the kernel kills
        // every process of the pid namespace. The launcher then reaps it and exits; killing
        // the launcher too would leave PID 1's zombie to the host's init.
        for (const p of childrenOf(launcher.pid)) {
          try {
            process.kill(p, 'SIGKILL');
          } catch {
            /* gone */
          }
        }
        if (!(await this.#waitLauncher(5_000))) {
          try {
            process.kill(launcher.pid, 'SIGKILL');
          } catch {
            /* gone */
          }
          await this.#waitLauncher(5_000);
        }
      }
    }
    live.delete(this);
    await this.#removeCgroups(10_000);
  }

  async #waitLauncher(ms: number): Promise<boolean> {
    if (this.#launcherDone) return true;
    if (ms <= 0) return false;
    return withTimeout(this.#launcherExited!, ms);
  }

  /** rmdir the cgroups created at start, deepest first (systemd and runc create sub-cgroups). */
  async #removeCgroups(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const roots = this.#cgroupRoots;
    for (;;) {
      let busy = false;
      for (const root of roots) {
        for (const dir of subdirsDeepestFirst(root)) {
          try {
            await rmdir(dir);
          } catch (e) {
            const code = (e as NodeJS.ErrnoException).code;
            if (code !== 'ENOENT') busy = true; // EBUSY: processes still exiting
          }
        }
      }
      if (!busy || Date.now() > deadline) return;
      await sleep(50);
    }
  }

  #mountsUnderBase(): MountInfo[] {
    const needle = `/${path.basename(this.base)}`; // mkdtemp's random name: unique enough
    const has = (s: string) => s.includes(`${needle}/`) || s.endsWith(needle);
    return readMountInfo().filter((m) => has(m.mountpoint) || has(m.root) || has(m.source));
  }

  /** Synchronous best-effort cleanup, for the process 'exit' handler. */
  emergencyStopSync(): void {
    live.delete(this);
    const l = this.#launcher?.pid;
    if (l !== undefined && !this.#launcherDone) {
      for (const p of [...childrenOf(l), l]) {
        try {
          process.kill(p, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    }
    const roots = this.#cgroupRoots;
    const deadline = Date.now() + 3_000;
    for (;;) {
      let busy = false;
      for (const root of roots) {
        for (const dir of subdirsDeepestFirst(root)) {
          try {
            fs.rmdirSync(dir);
          } catch (e) {
            if ((e as NodeJS.ErrnoException).code !== 'ENOENT') busy = true;
          }
        }
      }
      if (!busy || Date.now() > deadline) break;
      sleepSync(50);
    }
    spawnSync('rm', rmTreeArgs(this.base));
  }

  /** Processes in this host's pid namespace or in its cgroups, as report lines. */
  #leftoverProcesses(): string[] {
    const out: string[] = [];
    const cgMarker = `:/${this.cgroupName}`;
    for (const ent of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(ent)) continue;
      let why = '';
      if (this.#pidnsIno !== undefined) {
        try {
          if (fs.readlinkSync(`/proc/${ent}/ns/pid`) === `pid:[${this.#pidnsIno}]`) why = 'in its pid namespace';
        } catch {
          /* gone, or a kernel thread */
        }
      }
      if (!why) {
        try {
          const cg = fs.readFileSync(`/proc/${ent}/cgroup`, 'utf8');
          if (cg.split('\n').some((line) => line.includes(`${cgMarker}/`) || line.endsWith(cgMarker))) why = 'in its cgroups';
        } catch {
          /* gone */
        }
      }
      if (!why) continue;
      let stat = '';
      try {
        stat = fs.readFileSync(`/proc/${ent}/stat`, 'utf8');
      } catch {
        continue; // gone meanwhile
      }
      // "pid (comm) S ...": comm may contain spaces and parens, the state follows the last ')'
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
      const what = state === 'Z' ? `[${comm}] (zombie)` : cmdlineOf(ent) || `[${comm}]`;
      out.push(`process ${ent} ${why}: ${what}`);
    }
    return out;
  }

  /**
   * Throws with a list if anything is left: processes in its pid namespace or its cgroups, the
   * launcher, mounts whose source or target is under base, cgroup dirs named cgroupName in any
   * hierarchy, the base dir. Call after stop().
   */
  async assertClean(): Promise<void> {
    const problems: string[] = [];
    try {
      if (!this.#stopping) problems.push('stop() was not called');
      else await this.#stopping.catch((e: unknown) => problems.push(`stop() failed: ${String(e)}`));

      const l = this.#launcher?.pid;
      if (l !== undefined && !this.#launcherDone && isAlive(l)) problems.push(`launcher still running: ${l} ${cmdlineOf(l)}`);

      let procs = this.#leftoverProcesses();
      // zombies (e.g. reparented to the host's init) disappear once reaped: give them a moment
      for (let i = 0; i < 30 && procs.length && procs.every((p) => p.endsWith('(zombie)')); i++) {
        await sleep(100);
        procs = this.#leftoverProcesses();
      }
      problems.push(...procs);

      for (const m of this.#mountsUnderBase()) {
        problems.push(`mount left: ${m.source}[${m.root}] on ${m.mountpoint} (${m.fstype})`);
      }

      for (const m of cgroupMounts()) {
        const dir = path.join(m.mountpoint, this.cgroupName);
        if (fs.existsSync(dir)) problems.push(`cgroup dir left: ${subdirsDeepestFirst(dir).reverse().join(', ')}`);
      }

      try {
        await access(this.base);
        problems.push(`base dir left: ${this.base}`);
      } catch {
        /* removed */
      }
    } finally {
      if (this.#pidnsFd !== undefined) {
        fs.closeSync(this.#pidnsFd);
        this.#pidnsFd = undefined;
      }
    }
    if (problems.length) {
      throw new Error(`TestHost ${this.cgroupName} left things behind:\n  - ${problems.join('\n  - ')}`);
    }
  }
}

/** dir and all dirs below it, children before parents (for rmdir); [] if dir is missing. */
function subdirsDeepestFirst(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) if (e.isDirectory()) walk(path.join(d, e.name));
    out.push(d);
  };
  walk(dir);
  return out;
}
