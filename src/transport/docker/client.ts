/**
 * A small HTTP client for one registry (OCI distribution v2): scheme
 * selection (https, then http only when TLS verification is off), the /v2/
 * ping, anonymous Bearer tokens from the WWW-Authenticate challenge, and
 * errors mapped to berth's codes. Responses are streamed, never buffered
 * whole, except for bodies read with a cap.
 */
import http from 'node:http';
import https from 'node:https';
import type { IncomingMessage } from 'node:http';
import { BerthError, errnoCode } from '../../errors.ts';

const CONNECT_TIMEOUT_MS = 15_000;
/** A read that stalls this long fails rather than hanging a boot. */
const IDLE_TIMEOUT_MS = 60_000;
const MAX_REDIRECTS = 5;

export interface RegistryClientOptions {
  /** host[:port] as in the reference */
  host: string;
  tlsVerify: boolean;
  userAgent?: string;
}

interface Challenge {
  realm: string;
  service: string | undefined;
}

export class RegistryClient {
  readonly host: string;
  private readonly tlsVerify: boolean;
  private baseUrl: string | undefined;
  private challenge: Challenge | undefined;
  private readonly tokens = new Map<string, string>();

  constructor(options: RegistryClientOptions) {
    this.host = options.host;
    this.tlsVerify = options.tlsVerify;
  }

  /** GET /v2/: choose the scheme and learn the auth challenge. */
  async ping(): Promise<void> {
    if (this.baseUrl !== undefined) return;
    const schemes = this.tlsVerify ? ['https'] : ['https', 'http'];
    let lastError: unknown;
    for (const scheme of schemes) {
      const base = `${scheme}://${this.host}`;
      try {
        const res = await this.raw('GET', new URL('/v2/', base), {});
        res.resume();
        if (res.statusCode === 200 || res.statusCode === 401) {
          this.baseUrl = base;
          if (res.statusCode === 401) this.challenge = parseChallenge(res.headers['www-authenticate']);
          return;
        }
        lastError = new BerthError('REGISTRY_ERROR', `${this.host} is not a container registry (GET /v2/ answered ${res.statusCode})`, {
          hint: 'check the registry address',
        });
      } catch (e) {
        lastError = e;
      }
    }
    if (lastError instanceof BerthError) throw lastError;
    throw this.unreachable(lastError);
  }

  /**
   * GET a registry path with Accept headers; follows redirects (dropping
   * Authorization when the host changes). Returns the response for any status.
   */
  async get(path: string, scope: string, accept: readonly string[] = [], extraHeaders: Record<string, string> = {}): Promise<IncomingMessage> {
    await this.ping();
    let url = new URL(path, this.baseUrl);
    const headers: Record<string, string> = { ...extraHeaders };
    if (accept.length > 0) headers['accept'] = accept.join(', ');
    const token = await this.token(scope);
    for (let hop = 0; ; hop++) {
      const sameHost = url.host === new URL(this.baseUrl!).host;
      const res = await this.raw('GET', url, token && sameHost ? { ...headers, authorization: `Bearer ${token}` } : headers);
      const location = res.headers.location;
      if (res.statusCode !== undefined && [301, 302, 303, 307, 308].includes(res.statusCode) && location) {
        res.resume();
        if (hop >= MAX_REDIRECTS) throw new BerthError('REGISTRY_ERROR', `${this.host}: too many redirects for ${path}`, { hint: 'the registry is misconfigured' });
        const next = new URL(location, url);
        if (next.protocol !== 'https:' && !(next.protocol === 'http:' && !this.tlsVerify)) {
          throw new BerthError('REGISTRY_ERROR', `${this.host} redirected ${path} to a ${next.protocol} URL`, { hint: 'refusing to leave TLS; use --tls-verify=false only for trusted local registries' });
        }
        url = next;
        continue;
      }
      return res;
    }
  }

  private async token(scope: string): Promise<string | undefined> {
    if (this.challenge === undefined) return undefined;
    const cached = this.tokens.get(scope);
    if (cached !== undefined) return cached;
    const u = new URL(this.challenge.realm);
    if (this.challenge.service !== undefined) u.searchParams.set('service', this.challenge.service);
    u.searchParams.set('scope', scope);
    const res = await this.raw('GET', u, {});
    const body = await readCapped(res, 1024 * 1024, `token from ${u.host}`);
    if (res.statusCode !== 200) throw new BerthError('REGISTRY_ERROR', `${this.host}: token request to ${u.host} answered ${res.statusCode}`, { hint: 'the image may need credentials' });
    let token: unknown;
    try {
      const o = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
      token = o['token'] ?? o['access_token'];
    } catch {
      token = undefined;
    }
    if (typeof token !== 'string' || token === '' || /[\r\n]/.test(token)) throw new BerthError('REGISTRY_ERROR', `${this.host}: the token service ${u.host} sent no usable token`, { hint: 'the registry is misconfigured' });
    this.tokens.set(scope, token);
    return token;
  }

  private raw(method: string, url: URL, headers: Record<string, string>): Promise<IncomingMessage> {
    const mod = url.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      const req = mod.request(
        url,
        {
          method,
          headers: { 'user-agent': 'berth', ...headers },
          timeout: CONNECT_TIMEOUT_MS,
          ...(url.protocol === 'https:' ? { rejectUnauthorized: this.tlsVerify } : {}),
        },
        (res) => {
          // After the headers, a stalled body read errors the stream.
          res.socket.setTimeout(IDLE_TIMEOUT_MS, () => res.destroy(new BerthError('REGISTRY_UNREACHABLE', `${this.host}: no data for ${IDLE_TIMEOUT_MS / 1000}s while reading ${url.pathname}`, { hint: 'the network or registry stalled; try again' })));
          resolve(res);
        },
      );
      req.on('timeout', () => req.destroy(Object.assign(new Error('connection timed out'), { code: 'ETIMEDOUT' })));
      req.on('error', reject);
      req.end();
    });
  }

  unreachable(e: unknown): BerthError {
    const code = errnoCode(e);
    const why =
      code === 'ECONNREFUSED' ? 'connection refused'
      : code === 'ENOTFOUND' || code === 'EAI_AGAIN' ? 'host not found'
      : code === 'ETIMEDOUT' ? 'connection timed out'
      : code === 'EPROTO' || code?.startsWith('ERR_SSL') || code?.startsWith('ERR_TLS') || code === 'DEPTH_ZERO_SELF_SIGNED_CERT' || code === 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' ? `TLS failed (${code})`
      : (e as Error)?.message ?? String(e);
    return new BerthError('REGISTRY_UNREACHABLE', `cannot reach registry ${this.host}: ${why}`, {
      hint: this.tlsVerify && why.startsWith('TLS') ? 'for a local registry without TLS, add --tls-verify=false' : 'check the address and that the registry is running',
      cause: e,
    });
  }
}

function parseChallenge(header: string | undefined): Challenge | undefined {
  if (!header || !/^bearer\s/i.test(header)) return undefined;
  const params = new Map<string, string>();
  for (const m of header.slice(7).matchAll(/(\w+)="([^"]*)"/g)) params.set(m[1]!.toLowerCase(), m[2]!);
  const realm = params.get('realm');
  if (!realm) return undefined;
  return { realm, service: params.get('service') };
}

/** Read a whole body, refusing more than `cap` bytes. */
export async function readCapped(res: IncomingMessage, cap: number, what: string): Promise<Buffer> {
  const declared = Number(res.headers['content-length']);
  if (Number.isFinite(declared) && declared > cap) {
    res.destroy();
    throw new BerthError('MANIFEST_INVALID', `${what} is ${declared} bytes, the limit is ${cap}`, { hint: 'the registry sent an oversized document; the image is unusable' });
  }
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of res) {
    total += (chunk as Buffer).length;
    if (total > cap) {
      res.destroy();
      throw new BerthError('MANIFEST_INVALID', `${what} is larger than the limit of ${cap} bytes`, { hint: 'the registry sent an oversized document; the image is unusable' });
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}
