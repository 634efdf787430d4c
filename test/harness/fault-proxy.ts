/**
 * FaultProxy: a reverse proxy on 127.0.0.1:<random port> in front of a test
 * registry, with programmable faults per request path (answer a status,
 * cut the body off, flip a byte, stall, redirect to a second listener on
 * 127.0.0.2) and a record of every request's headers. Optionally demands
 * Basic credentials on its main listener (the redirect listener never does,
 * like a blob storage host).
 */
import http from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

export type Fault =
  /** Answer this status (e.g. 500, or 429 with Retry-After) instead of forwarding. */
  | { kind: 'status'; status: number; headers?: Record<string, string>; body?: string }
  /** Forward headers (with the full Content-Length) and `afterBytes` of the body, then close the socket. */
  | { kind: 'truncate'; afterBytes: number }
  /** Flip one byte of the body (default: the middle one). */
  | { kind: 'corrupt'; atByte?: number }
  /** Forward headers and `afterBytes` of the body, then send nothing more (the connection stays open). */
  | { kind: 'stall'; afterBytes?: number }
  /** 307 to the same path on the redirect listener (127.0.0.2). */
  | { kind: 'redirect' }
  /** Forward without the Range header, as a server that ignores ranges would answer (200, whole body). */
  | { kind: 'ignore-range' }
  /** Forward the body at about `bytesPerSecond`, in 1/10 s slices. */
  | { kind: 'throttle'; bytesPerSecond: number };

export interface RecordedRequest {
  readonly listener: 'main' | 'redirect';
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  /** The fault applied, if any. */
  readonly fault: Fault['kind'] | undefined;
  /** The status sent (once known). */
  status: number | undefined;
}

export interface FaultProxyOptions {
  /** Require these Basic credentials on the main listener (401 with a Basic challenge otherwise). */
  basicAuth?: { user: string; password: string };
  /** Address of the redirect listener; default 127.0.0.2. */
  redirectAddress?: string;
}

interface Rule {
  match: RegExp;
  fault: Fault;
  remaining: number;
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'proxy-authorization', 'proxy-authenticate']);

function forwardable(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = v;
  return out;
}

function listen(server: http.Server, address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, address, () => {
      const a = server.address();
      if (a && typeof a === 'object') resolve(a.port);
      else reject(new Error('FaultProxy: no address'));
    });
  });
}

export class FaultProxy {
  /** "127.0.0.1:PORT" */
  readonly host: string;
  /** "http://127.0.0.2:PORT" */
  readonly redirectOrigin: string;
  readonly requests: RecordedRequest[] = [];

  readonly #target: URL;
  readonly #servers: http.Server[];
  readonly #sockets = new Set<Socket>();
  readonly #rules: Rule[] = [];
  readonly #basic: string | undefined;

  private constructor(target: URL, main: http.Server, mainPort: number, redirect: http.Server, redirectOrigin: string, basic: string | undefined) {
    this.#target = target;
    this.#servers = [main, redirect];
    this.host = `127.0.0.1:${mainPort}`;
    this.redirectOrigin = redirectOrigin;
    this.#basic = basic;
  }

  /** Start in front of `target` ("http://127.0.0.1:PORT" or "127.0.0.1:PORT"). */
  static async start(target: string, options: FaultProxyOptions = {}): Promise<FaultProxy> {
    const url = new URL(target.includes('://') ? target : `http://${target}`);
    const main = http.createServer();
    const redirect = http.createServer();
    const mainPort = await listen(main, '127.0.0.1');
    const redirectAddress = options.redirectAddress ?? '127.0.0.2';
    const redirectPort = await listen(redirect, redirectAddress);
    const basic = options.basicAuth ? `Basic ${Buffer.from(`${options.basicAuth.user}:${options.basicAuth.password}`).toString('base64')}` : undefined;
    const proxy = new FaultProxy(url, main, mainPort, redirect, `http://${redirectAddress}:${redirectPort}`, basic);
    for (const s of proxy.#servers) {
      s.on('connection', (sock: Socket) => {
        proxy.#sockets.add(sock);
        sock.once('close', () => proxy.#sockets.delete(sock));
      });
    }
    main.on('request', (req: IncomingMessage, res: ServerResponse) => proxy.#handle('main', req, res));
    redirect.on('request', (req: IncomingMessage, res: ServerResponse) => proxy.#handle('redirect', req, res));
    return proxy;
  }

  /** Apply `fault` to the next `times` GET requests whose path matches (on the main listener). */
  inject(match: RegExp | string, fault: Fault, times = 1): void {
    const re = typeof match === 'string' ? new RegExp(match.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')) : match;
    this.#rules.push({ match: re, fault, remaining: times });
  }

  /** Forget the faults not yet applied and the recorded requests. */
  reset(): void {
    this.#rules.length = 0;
    this.requests.length = 0;
  }

  async stop(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await Promise.all(this.#servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }

  #take(listener: 'main' | 'redirect', req: IncomingMessage): Fault | undefined {
    if (listener !== 'main' || req.method !== 'GET') return undefined;
    const rule = this.#rules.find((r) => r.remaining > 0 && r.match.test(req.url ?? ''));
    if (rule === undefined) return undefined;
    rule.remaining--;
    return rule.fault;
  }

  #handle(listener: 'main' | 'redirect', req: IncomingMessage, res: ServerResponse): void {
    const authorized = listener === 'redirect' || this.#basic === undefined || req.headers.authorization === this.#basic;
    const fault = authorized ? this.#take(listener, req) : undefined;
    const record: RecordedRequest = { listener, method: req.method ?? '', path: req.url ?? '', headers: { ...req.headers }, fault: fault?.kind, status: undefined };
    this.requests.push(record);
    res.once('finish', () => (record.status = res.statusCode));
    res.once('close', () => (record.status ??= res.statusCode));
    if (!authorized) {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="fault-proxy"', 'content-type': 'application/json' });
      res.end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
      return;
    }
    if (fault?.kind === 'status') {
      res.writeHead(fault.status, { 'content-type': 'application/json', ...fault.headers });
      res.end(fault.body ?? '{"errors":[{"code":"UNKNOWN","message":"injected fault"}]}');
      return;
    }
    if (fault?.kind === 'redirect') {
      res.writeHead(307, { location: `${this.redirectOrigin}${req.url ?? '/'}` });
      res.end();
      return;
    }
    const headers = forwardable(req.headers);
    delete headers['authorization']; // the registry behind is open; the proxy did the checking
    if (fault?.kind === 'ignore-range') delete headers['range'];
    headers['host'] = this.#target.host;
    const up = http.request(
      { host: this.#target.hostname, port: this.#target.port, method: req.method, path: req.url, headers, agent: false },
      (upRes) => this.#respond(upRes, res, fault),
    );
    up.on('error', () => res.destroy());
    req.pipe(up);
  }

  #respond(upRes: IncomingMessage, res: ServerResponse, fault: Fault | undefined): void {
    res.writeHead(upRes.statusCode ?? 502, forwardable(upRes.headers));
    if (fault === undefined || fault.kind === 'ignore-range') {
      upRes.pipe(res);
      return;
    }
    const length = Number(upRes.headers['content-length']);
    let sent = 0;
    if (fault.kind === 'truncate' || fault.kind === 'stall') {
      const limit = fault.kind === 'truncate' ? fault.afterBytes : fault.afterBytes ?? 0;
      if (limit === 0) res.flushHeaders();
      upRes.on('data', (chunk: Buffer) => {
        if (sent >= limit) return;
        const part = chunk.subarray(0, limit - sent);
        sent += part.length;
        res.write(part, () => {
          if (sent < limit) return;
          upRes.destroy();
          // Truncate: the client sees the connection close before Content-Length bytes; stall: it sees nothing more.
          if (fault.kind === 'truncate') res.socket?.destroy();
        });
      });
      upRes.once('end', () => {
        if (sent < limit) res.end();
      });
      if (limit === 0) {
        upRes.destroy();
        if (fault.kind === 'truncate') res.socket?.destroy();
      }
      return;
    }
    if (fault.kind === 'throttle') {
      const slice = Math.max(1, Math.floor(fault.bytesPerSecond / 10));
      const queue: Buffer[] = [];
      let ended = false;
      const timer = setInterval(() => {
        let budget = slice;
        while (budget > 0 && queue.length) {
          const c = queue[0]!;
          const part = c.subarray(0, budget);
          budget -= part.length;
          if (part.length === c.length) queue.shift();
          else queue[0] = c.subarray(part.length);
          res.write(part);
        }
        if (queue.length === 0 && ended) {
          clearInterval(timer);
          res.end();
        }
      }, 100);
      res.on('close', () => clearInterval(timer));
      upRes.on('data', (chunk: Buffer) => queue.push(chunk));
      upRes.once('end', () => (ended = true));
      return;
    }
    if (fault.kind === 'corrupt') {
      const at = fault.atByte ?? (Number.isFinite(length) ? Math.floor(length / 2) : 0);
      upRes.on('data', (chunk: Buffer) => {
        let c = chunk;
        if (at >= sent && at < sent + c.length) {
          c = Buffer.from(c);
          c[at - sent] = c[at - sent]! ^ 0xff;
        }
        sent += chunk.length;
        res.write(c);
      });
      upRes.once('end', () => res.end());
    }
  }
}
