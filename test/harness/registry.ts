/**
 * TestRegistry: Debian's docker-registry (distribution 2.8) on 127.0.0.1:<random free port>,
 * with its storage in a fresh temp dir, for tests that push and pull images over HTTP;
 * optionally behind htpasswd (Basic) authentication.
 */
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import bcrypt from 'bcryptjs';
import { withTimeout } from './util.ts';

const REGISTRY_BIN = '/usr/bin/docker-registry';
const READY_TIMEOUT_MS = 10_000;
const PORT_ATTEMPTS = 5;

/** A port on 127.0.0.1 that nothing listens on (for "registry is down" tests). */
export async function unusedPort(): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => {
        if (addr && typeof addr === 'object') resolve(addr.port);
        else reject(new Error('unusedPort: no address'));
      });
    });
  });
}

/** True if `pid` owns a listening TCP socket on 127.0.0.1:port (rules out someone else's server). */
function listensOn(pid: number, port: number): boolean {
  const inodes = new Set<string>();
  let tcp: string;
  try {
    tcp = fs.readFileSync('/proc/net/tcp', 'utf8');
  } catch {
    return false;
  }
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  for (const line of tcp.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f[1] === local && f[3] === '0A') inodes.add(`socket:[${f[9]}]`); // 0A = LISTEN
  }
  if (inodes.size === 0) return false;
  try {
    for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
      try {
        if (inodes.has(fs.readlinkSync(`/proc/${pid}/fd/${fd}`))) return true;
      } catch {
        /* fd closed meanwhile */
      }
    }
  } catch {
    /* process gone */
  }
  return false;
}

export interface TestRegistryOptions {
  /** Require these credentials (htpasswd, bcrypt) for every request. */
  auth?: { user: string; password: string };
  /** Serve HTTPS with this certificate and key (PEM files); with `clientCa`, require a client certificate it signed. */
  tls?: { cert: string; key: string; clientCa?: string };
  /** Write an access log line per request (combined format, with the User-Agent) into registry.log (see requests() and log()). */
  accessLog?: boolean;
  /**
   * notifications.endpoints: the registry POSTs its events (push, pull) to
   * each URL, with these headers (e.g. Authorization), retrying every
   * `backoffMs` while the endpoint fails. Blob events are left out
   * (ignoredmediatypes), as a publisher's configuration would.
   */
  notifications?: { name: string; url: string; headers?: Record<string, string>; backoffMs?: number }[];
}

function notificationsYaml(endpoints: TestRegistryOptions['notifications']): string[] {
  if (endpoints === undefined || endpoints.length === 0) return [];
  const out = ['notifications:', '  endpoints:'];
  for (const e of endpoints) {
    out.push(`    - name: ${JSON.stringify(e.name)}`, `      url: ${JSON.stringify(e.url)}`);
    if (e.headers !== undefined) {
      out.push('      headers:');
      for (const [k, v] of Object.entries(e.headers)) out.push(`        ${JSON.stringify(k)}: [${JSON.stringify(v)}]`);
    }
    out.push('      timeout: 5s', '      threshold: 3', `      backoff: ${e.backoffMs ?? 1000}ms`, '      ignoredmediatypes:', '        - application/octet-stream');
  }
  return out;
}

function configYaml(storage: string, port: number, htpasswd: string | undefined, tls: TestRegistryOptions['tls'], accessLog: boolean, notifications?: TestRegistryOptions['notifications']): string {
  return [
    'version: 0.1',
    'log:',
    '  level: error',
    '  accesslog:',
    `    disabled: ${!accessLog}`,
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${storage}`,
    '  delete:',
    '    enabled: true',
    '  maintenance:',
    '    uploadpurging:',
    '      enabled: false',
    'http:',
    `  addr: 127.0.0.1:${port}`,
    ...(tls === undefined ? [] : ['  tls:', `    certificate: ${tls.cert}`, `    key: ${tls.key}`, ...(tls.clientCa === undefined ? [] : ['    clientcas:', `      - ${tls.clientCa}`])]),
    'health:',
    '  storagedriver:',
    '    enabled: false',
    ...(htpasswd === undefined ? [] : ['auth:', '  htpasswd:', '    realm: berth-test', `    path: ${htpasswd}`]),
    ...notificationsYaml(notifications),
    '',
  ].join('\n');
}

/** Registries not stopped yet: killed by the process 'exit' handler. */
const live = new Set<TestRegistry>();
let exitHandlerInstalled = false;
function installExitHandler(): void {
  if (exitHandlerInstalled) return;
  exitHandlerInstalled = true;
  process.on('exit', () => {
    for (const r of live) r.emergencyStopSync();
  });
}

class PortTaken extends Error {}

export class TestRegistry {
  /** "127.0.0.1:PORT" */
  readonly host: string;
  /** "http://127.0.0.1:PORT" (https with TLS) */
  readonly url: string;
  /** temp dir: config.yml, registry.log, data/ (the storage), htpasswd */
  readonly dir: string;
  /** USER:PASS when the registry requires authentication. */
  readonly creds: string | undefined;

  #child: ChildProcess;
  #exited: Promise<void>;
  #done = false;
  #stopping: Promise<void> | undefined;

  readonly #tls: boolean;

  private constructor(dir: string, port: number, child: ChildProcess, creds: string | undefined, tls: boolean) {
    this.dir = dir;
    this.creds = creds;
    this.host = `127.0.0.1:${port}`;
    this.url = `${tls ? 'https' : 'http'}://${this.host}`;
    this.#tls = tls;
    this.#child = child;
    this.#exited = new Promise<void>((resolve) => {
      const done = (): void => {
        this.#done = true;
        resolve();
      };
      child.once('exit', done);
      child.once('error', done);
    });
  }

  static async start(options: TestRegistryOptions = {}): Promise<TestRegistry> {
    installExitHandler();
    let last: unknown;
    for (let attempt = 0; attempt < PORT_ATTEMPTS; attempt++) {
      const port = await unusedPort();
      const reg = await TestRegistry.#spawn(port, options);
      try {
        await reg.#waitReady(port);
        return reg;
      } catch (e) {
        await reg.stop();
        last = e;
        if (!(e instanceof PortTaken)) throw e;
      }
    }
    throw new Error(`TestRegistry: no free port after ${PORT_ATTEMPTS} attempts: ${String(last)}`);
  }

  static async #spawn(port: number, options: TestRegistryOptions): Promise<TestRegistry> {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'berth-reg-'));
    let htpasswd: string | undefined;
    if (options.auth) {
      if (options.auth.user.includes(':')) throw new Error('TestRegistry: a user name cannot contain ":"');
      htpasswd = path.join(dir, 'htpasswd');
      // distribution accepts bcrypt entries only; cost 5 keeps each request cheap.
      await writeFile(htpasswd, `${options.auth.user}:${bcrypt.hashSync(options.auth.password, 5)}\n`);
    }
    await writeFile(path.join(dir, 'config.yml'), configYaml(path.join(dir, 'data'), port, htpasswd, options.tls, options.accessLog === true, options.notifications));
    // REGISTRY_* variables would override the config file
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('REGISTRY_')));
    const logFd = fs.openSync(path.join(dir, 'registry.log'), 'a');
    let child: ChildProcess;
    try {
      // setpriv --pdeathsig: the kernel kills the registry if this process dies (even by
      // SIGKILL); the 'exit' handler covers a normal exit.
      child = spawn('setpriv', ['--pdeathsig', 'SIGKILL', '--', REGISTRY_BIN, 'serve', path.join(dir, 'config.yml')], {
        env,
        stdio: ['ignore', logFd, logFd],
      });
    } finally {
      fs.closeSync(logFd);
    }
    child.unref(); // a forgotten stop() must not keep the test process alive
    const reg = new TestRegistry(dir, port, child, options.auth ? `${options.auth.user}:${options.auth.password}` : undefined, options.tls !== undefined);
    live.add(reg);
    return reg;
  }

  /**
   * The requests the registry served, as "METHOD PATH STATUS" in order, from
   * its access log (start it with accessLog: true). The registry's own record
   * of what a client fetched: what the tests assert "nothing was fetched" on.
   */
  async requests(): Promise<string[]> {
    const out: string[] = [];
    for (const line of (await this.#log()).split('\n')) {
      const m = /"([A-Z]+) (\S+) HTTP\/[0-9.]+" (\d{3})/.exec(line);
      if (m) out.push(`${m[1]} ${m[2]} ${m[3]}`);
    }
    return out;
  }

  /** registry.log as it is now (with accessLog: one line per request). */
  async log(): Promise<string> {
    return this.#log();
  }

  async #log(): Promise<string> {
    try {
      return (await readFile(path.join(this.dir, 'registry.log'), 'utf8')).trim();
    } catch {
      return '';
    }
  }

  async #waitReady(port: number): Promise<void> {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    let lastErr = '';
    for (;;) {
      if (this.#done) {
        const log = await this.#log();
        if (/address already in use/i.test(log)) throw new PortTaken(`port ${port} taken`);
        throw new Error(`TestRegistry: docker-registry exited at start (code ${this.#child.exitCode}):\n${log}`);
      }
      let status = 0;
      try {
        // With TLS (maybe client certificates) the harness does not speak HTTPS itself: listening is enough.
        if (this.#tls) {
          status = (await tcpOpen(port)) ? 200 : 0;
        } else {
          const headers: Record<string, string> = this.creds === undefined ? {} : { authorization: `Basic ${Buffer.from(this.creds).toString('base64')}` };
          const res = await fetch(`${this.url}/v2/`, { headers, signal: AbortSignal.timeout(1_000) });
          await res.arrayBuffer();
          status = res.status;
        }
      } catch (e) {
        lastErr = String(e); // ECONNREFUSED until it listens
      }
      if (status !== 0) {
        // the answer must come from our process, not from another server that took the port
        if (this.#child.pid === undefined || !listensOn(this.#child.pid, port)) throw new PortTaken(`port ${port} taken`);
        if (status === 200) return;
        lastErr = `GET /v2/ -> ${status}`;
      }
      if (Date.now() > deadline) {
        throw new Error(`TestRegistry: not ready after ${READY_TIMEOUT_MS} ms (${lastErr}):\n${await this.#log()}`);
      }
      await sleep(50);
    }
  }

  /** Kill the registry, wait for it to exit, remove the temp dir. Safe to call twice. */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      if (!this.#done) {
        this.#child.kill('SIGTERM');
        await withTimeout(this.#exited, 3_000);
        if (!this.#done) {
          this.#child.kill('SIGKILL');
          await this.#exited;
        }
      }
      live.delete(this);
      fs.rmSync(this.dir, { recursive: true, force: true });
    })();
    return this.#stopping;
  }

  /** Synchronous best-effort cleanup, for the process 'exit' handler. */
  emergencyStopSync(): void {
    live.delete(this);
    if (!this.#done) this.#child.kill('SIGKILL');
    spawnSync('rm', ['-rf', '--one-file-system', '--', this.dir]);
  }
}

/**
 * `skopeo copy --insecure-policy SRC DST ...extra` (plain HTTP and the
 * registry's credentials are the caller's extra flags). Rejects with skopeo's
 * stderr on failure.
 */
export function skopeoCopy(src: string, dst: string, extra: readonly string[] = []): Promise<void> {
  const args = ['copy', '--insecure-policy', '--retry-times', '0', ...extra, src, dst];
  return new Promise<void>((resolve, reject) => {
    execFile('skopeo', args, { maxBuffer: 16 * 1024 * 1024, timeout: 60_000 }, (err, _stdout, stderr) => {
      if (err) reject(new Error(`skopeo ${args.join(' ')} failed: ${String(stderr).trim() || err.message}`));
      else resolve();
    });
  });
}

function tcpOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port, timeout: 1_000 });
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('timeout', () => (socket.destroy(), resolve(false)));
    socket.once('error', () => resolve(false));
  });
}
