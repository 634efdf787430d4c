/**
 * TokenServer: the Docker token authentication flow in front of a real test
 * registry, on 127.0.0.1:<random port>. GET /token issues short-lived Bearer
 * tokens for Basic credentials (pull scopes only); every /v2/ request must
 * carry a live token whose scope covers the repository, else it gets 401 with
 * a proper `WWW-Authenticate: Bearer realm=...,service=...,scope=...`
 * challenge. Valid requests are proxied to the registry. Records every token
 * request and every refused registry request.
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

export interface TokenServerOptions {
  /** The registry to front: "127.0.0.1:PORT". */
  upstream: string;
  user: string;
  password: string;
  /** How long a token really works; default 2000 ms. */
  tokenTtlMs?: number;
  /** expires_in sent to clients (seconds); default the real TTL. A larger value makes clients meet a 401. */
  advertisedExpiresIn?: number;
  service?: string;
}

export interface TokenRequest {
  readonly scopes: string[];
  readonly service: string | undefined;
  /** The Basic user name presented, if any. */
  readonly user: string | undefined;
  readonly status: number;
}

export interface RefusedRequest {
  readonly path: string;
  readonly why: 'no token' | 'unknown token' | 'expired' | 'scope';
}

interface Grant {
  repositories: Set<string>;
  expiresAt: number;
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'proxy-authorization', 'proxy-authenticate']);

function forwardable(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = v;
  return out;
}

export class TokenServer {
  /** "127.0.0.1:PORT": use as the registry host. */
  readonly host: string;
  readonly realm: string;
  readonly service: string;
  readonly tokenRequests: TokenRequest[] = [];
  readonly refused: RefusedRequest[] = [];

  readonly #server: http.Server;
  readonly #sockets = new Set<Socket>();
  readonly #grants = new Map<string, Grant>();
  readonly #o: Required<Omit<TokenServerOptions, 'advertisedExpiresIn' | 'service'>> & { advertisedExpiresIn: number | undefined };

  private constructor(server: http.Server, port: number, options: TokenServerOptions) {
    this.#server = server;
    this.host = `127.0.0.1:${port}`;
    this.realm = `http://${this.host}/token`;
    this.service = options.service ?? 'berth-test-registry';
    this.#o = { upstream: options.upstream, user: options.user, password: options.password, tokenTtlMs: options.tokenTtlMs ?? 2000, advertisedExpiresIn: options.advertisedExpiresIn };
  }

  static async start(options: TokenServerOptions): Promise<TokenServer> {
    const server = http.createServer();
    const port = await new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const a = server.address();
        if (a && typeof a === 'object') resolve(a.port);
        else reject(new Error('TokenServer: no address'));
      });
    });
    const ts = new TokenServer(server, port, options);
    server.on('connection', (s: Socket) => {
      ts.#sockets.add(s);
      s.once('close', () => ts.#sockets.delete(s));
    });
    server.on('request', (req: IncomingMessage, res: ServerResponse) => ts.#handle(req, res));
    return ts;
  }

  async stop(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', `http://${this.host}`);
    if (url.pathname === '/token') {
      this.#token(req, url, res);
      return;
    }
    if (url.pathname === '/v2' || url.pathname.startsWith('/v2/')) {
      this.#registry(req, url, res);
      return;
    }
    res.writeHead(404).end();
  }

  #token(req: IncomingMessage, url: URL, res: ServerResponse): void {
    const scopes = url.searchParams.getAll('scope').flatMap((s) => s.split(' ')).filter(Boolean);
    const service = url.searchParams.get('service') ?? undefined;
    const auth = req.headers.authorization ?? '';
    let user: string | undefined;
    let ok = false;
    if (auth.startsWith('Basic ')) {
      const decoded = Buffer.from(auth.slice(6), 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      user = colon < 0 ? decoded : decoded.slice(0, colon);
      ok = decoded === `${this.#o.user}:${this.#o.password}`;
    }
    if (!ok || service !== this.service) {
      const status = ok ? 400 : 401;
      this.tokenRequests.push({ scopes, service, user, status });
      res.writeHead(status, { 'content-type': 'application/json', ...(status === 401 ? { 'www-authenticate': 'Basic realm="token"' } : {}) });
      res.end(JSON.stringify({ errors: [{ code: status === 401 ? 'UNAUTHORIZED' : 'INVALID_SERVICE', message: 'no' }] }));
      return;
    }
    this.tokenRequests.push({ scopes, service, user, status: 200 });
    const repositories = new Set<string>();
    for (const s of scopes) {
      const m = /^repository:([^:]+):(.+)$/.exec(s);
      if (m && m[2]!.split(',').includes('pull')) repositories.add(m[1]!);
    }
    const token = randomBytes(16).toString('hex');
    this.#grants.set(token, { repositories, expiresAt: Date.now() + this.#o.tokenTtlMs });
    const expiresIn = this.#o.advertisedExpiresIn ?? this.#o.tokenTtlMs / 1000;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ token, access_token: token, expires_in: expiresIn, issued_at: new Date().toISOString() }));
  }

  #challenge(res: ServerResponse, repository: string | undefined, error?: string): void {
    const params = [`realm="${this.realm}"`, `service="${this.service}"`];
    if (repository !== undefined) params.push(`scope="repository:${repository}:pull"`);
    if (error !== undefined) params.push(`error="${error}"`);
    res.writeHead(401, { 'www-authenticate': `Bearer ${params.join(',')}`, 'content-type': 'application/json' });
    res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }));
  }

  #registry(req: IncomingMessage, url: URL, res: ServerResponse): void {
    const repository = /^\/v2\/(.+)\/(?:manifests|blobs|tags)\//.exec(url.pathname)?.[1];
    const auth = req.headers.authorization ?? '';
    const token = auth.startsWith('Bearer ') ? auth.slice(7) : undefined;
    const grant = token === undefined ? undefined : this.#grants.get(token);
    const refuse = (why: RefusedRequest['why'], error?: string) => {
      this.refused.push({ path: url.pathname, why });
      this.#challenge(res, repository, error);
    };
    if (token === undefined) return refuse('no token');
    if (grant === undefined) return refuse('unknown token', 'invalid_token');
    if (Date.now() > grant.expiresAt) return refuse('expired', 'invalid_token');
    if (repository !== undefined && !grant.repositories.has(repository)) return refuse('scope', 'insufficient_scope');
    const headers = forwardable(req.headers);
    delete headers['authorization'];
    const [hostname, port] = this.#o.upstream.split(':');
    headers['host'] = this.#o.upstream;
    const up = http.request({ host: hostname, port: Number(port), method: req.method, path: req.url, headers, agent: false }, (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, forwardable(upRes.headers));
      upRes.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  }
}
