/**
 * HostileRegistry: a registry (OCI distribution v2, GET only) that serves
 * the images of an OCI layout honestly until a test tells it to misbehave
 * on a path: crafted manifest bytes and Content-Types, drips, redirects,
 * gigantic headers. Two listeners, 127.0.0.1 (the registry, optionally
 * demanding Basic credentials, optionally over TLS) and 127.0.0.2 ("another
 * host", like a blob CDN, plain HTTP, never asking for credentials), and a record of every request's
 * headers, so tests can see where credentials went.
 */
import { readFile } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { promisify } from 'node:util';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import path from 'node:path';

export type Listener = 'registry' | 'other';

/** Answers one request; return false to fall through to the honest answer. */
export type Handler = (req: IncomingMessage, res: ServerResponse, listener: Listener) => void | boolean | Promise<void | boolean>;

export interface RecordedRequest {
  readonly listener: Listener;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
}

export interface HostileRegistryOptions {
  /** Demand these Basic credentials on 127.0.0.1 (a 401 Basic challenge otherwise). */
  basicAuth?: { user: string; password: string };
  /** Serve 127.0.0.1 over TLS with this key and certificate (PEM); see selfSignedCertificate(). */
  tls?: { key: string; cert: string };
}

/** A throw-away self-signed certificate for 127.0.0.1 (clients need --tls-verify=false). */
export async function selfSignedCertificate(): Promise<{ key: string; cert: string }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'berth-hostile-tls-'));
  try {
    await promisify(execFile)('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
      '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem')]);
    return { key: await readFile(path.join(dir, 'key.pem'), 'utf8'), cert: await readFile(path.join(dir, 'cert.pem'), 'utf8') };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function listen(server: http.Server, address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, address, () => {
      const a = server.address();
      if (a && typeof a === 'object') resolve(a.port);
      else reject(new Error('HostileRegistry: no address'));
    });
  });
}

export class HostileRegistry {
  /** "127.0.0.1:PORT" */
  readonly host: string;
  /** "http://127.0.0.2:PORT": the other host. */
  readonly otherOrigin: string;
  readonly requests: RecordedRequest[] = [];

  readonly #servers: http.Server[];
  readonly #sockets = new Set<Socket>();
  readonly #routes: { match: RegExp; handler: Handler }[] = [];
  readonly #layouts = new Map<string, string>();
  readonly #basic: string | undefined;

  private constructor(servers: http.Server[], host: string, otherOrigin: string, basic: string | undefined) {
    this.#servers = servers;
    this.host = host;
    this.otherOrigin = otherOrigin;
    this.#basic = basic;
  }

  static async start(options: HostileRegistryOptions = {}): Promise<HostileRegistry> {
    const main = options.tls ? https.createServer(options.tls) : http.createServer();
    const other = http.createServer();
    const mainPort = await listen(main, '127.0.0.1');
    const otherPort = await listen(other, '127.0.0.2');
    const basic = options.basicAuth ? `Basic ${Buffer.from(`${options.basicAuth.user}:${options.basicAuth.password}`).toString('base64')}` : undefined;
    const r = new HostileRegistry([main, other], `127.0.0.1:${mainPort}`, `http://127.0.0.2:${otherPort}`, basic);
    for (const s of [main, other]) {
      s.on('connection', (sock: Socket) => {
        r.#sockets.add(sock);
        sock.once('close', () => r.#sockets.delete(sock));
      });
    }
    main.on('request', (req: IncomingMessage, res: ServerResponse) => void r.#handle('registry', req, res));
    other.on('request', (req: IncomingMessage, res: ServerResponse) => void r.#handle('other', req, res));
    return r;
  }

  /** Serve the OCI layout's images as REPO:TAG (tags from index.json's ref names) and its blobs by digest. */
  serveLayout(repo: string, layout: string): void {
    this.#layouts.set(repo, layout);
  }

  /** From now on, answer GETs whose path matches with `handler` (the latest route wins). */
  on(match: RegExp | string, handler: Handler): void {
    const re = typeof match === 'string' ? new RegExp(`^${match.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`) : match;
    this.#routes.unshift({ match: re, handler });
  }

  /** Serve `body` as the manifest REPO:REF with this Content-Type (and more headers). */
  manifest(repo: string, ref: string, body: Buffer | string, contentType: string | undefined, headers: Record<string, string> = {}): void {
    this.on(`/v2/${repo}/manifests/${ref}`, (_req, res) => {
      const bytes = Buffer.from(body);
      res.writeHead(200, { ...(contentType === undefined ? {} : { 'content-type': contentType }), 'content-length': bytes.length, ...headers });
      res.end(bytes);
    });
  }

  /** The bytes of a blob of a served layout. */
  async blob(repo: string, digest: string): Promise<Buffer> {
    const layout = this.#layouts.get(repo);
    if (layout === undefined) throw new Error(`HostileRegistry: no layout for ${repo}`);
    return readFile(path.join(layout, 'blobs', ...digest.split(':')));
  }

  /** Forget the routes and the recorded requests (layouts stay). */
  reset(): void {
    this.#routes.length = 0;
    this.requests.length = 0;
  }

  async stop(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await Promise.all(this.#servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }

  async #handle(listener: Listener, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = req.url ?? '/';
    this.requests.push({ listener, path: url, headers: { ...req.headers } });
    try {
      if (listener === 'registry' && this.#basic !== undefined && req.headers.authorization !== this.#basic) {
        return error(res, 401, 'UNAUTHORIZED', { 'www-authenticate': 'Basic realm="hostile"' });
      }
      for (const route of this.#routes) {
        if (route.match.test(url) && (await route.handler(req, res, listener)) !== false) return;
      }
      await this.#honest(url, res);
    } catch (e) {
      if (!res.headersSent) error(res, 500, 'UNKNOWN', {}, String(e));
      else res.destroy();
    }
  }

  async #honest(url: string, res: ServerResponse): Promise<void> {
    if (url === '/v2/' || url === '/v2') return void res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    const m = /^\/v2\/(.+)\/(manifests|blobs)\/([^/]+)$/.exec(url);
    const layout = m ? this.#layouts.get(m[1]!) : undefined;
    if (!m || layout === undefined) return error(res, 404, 'NAME_UNKNOWN');
    let digest = m[3]!;
    let mediaType: string | undefined;
    if (m[2] === 'manifests' && !digest.includes(':')) {
      const index = JSON.parse(await readFile(path.join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string; mediaType: string; annotations?: Record<string, string> }[] };
      const entry = index.manifests.find((e) => e.annotations?.['org.opencontainers.image.ref.name'] === digest);
      if (entry === undefined) return error(res, 404, 'MANIFEST_UNKNOWN');
      digest = entry.digest;
      mediaType = entry.mediaType;
    }
    let bytes: Buffer;
    try {
      bytes = await readFile(path.join(layout, 'blobs', ...digest.split(':')));
    } catch {
      return error(res, 404, m[2] === 'blobs' ? 'BLOB_UNKNOWN' : 'MANIFEST_UNKNOWN');
    }
    if (m[2] === 'manifests') mediaType ??= (JSON.parse(bytes.toString('utf8')) as { mediaType?: string }).mediaType;
    res.writeHead(200, {
      'content-type': m[2] === 'manifests' ? (mediaType ?? 'application/json') : 'application/octet-stream',
      'content-length': bytes.length,
      'docker-content-digest': digest,
    });
    res.end(bytes);
  }
}

function error(res: ServerResponse, status: number, code: string, headers: Record<string, string> = {}, message = code.toLowerCase()): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify({ errors: [{ code, message }] }));
}

/** A handler that sends `body` one small piece at a time, `everyMs` apart (Content-Length announced in full). */
export function drip(body: Buffer, contentType: string, everyMs: number, pieceBytes = 1): Handler {
  return (_req, res) => {
    res.writeHead(200, { 'content-type': contentType, 'content-length': body.length });
    let at = 0;
    const timer = setInterval(() => {
      if (res.destroyed || at >= body.length) {
        clearInterval(timer);
        if (!res.destroyed) res.end();
        return;
      }
      res.write(body.subarray(at, at + pieceBytes));
      at += pieceBytes;
    }, everyMs);
    res.once('close', () => clearInterval(timer));
  };
}
