/**
 * A small HTTP client for one registry (OCI distribution v2): scheme
 * selection (https, then http only when TLS verification is off), the /v2/
 * ping, authentication as the registry challenges it (Bearer tokens from the
 * token service, with Basic credentials when there are some, refreshed on
 * expiry or on one 401; or Basic), bounded retries of 5xx/429 and transient
 * network errors, redirects that never carry credentials to another host nor
 * leave HTTPS, reads that fail when they stall or drip below a minimum rate,
 * and errors mapped to berth's codes (malformed HTTP included). Responses are
 * streamed, never buffered whole, except for bodies read with a cap.
 */
import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import type { IncomingMessage } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { BerthError, errnoCode } from '../../errors.ts';
import type { RetryPolicy } from '../types.ts';
import type { Credentials } from './auth_file.ts';
import { CERTS_D_DIRS, type RegistryTls } from './certs_d.ts';
import { DEFAULT_MIN_RATE, RateWatch, tooSlow, type MinRate } from './min_rate.ts';
import { DEFAULT_RETRY, isRetryableStatus, isTransientNetworkError, retryDelay } from './retry.ts';
import { parseWWWAuthenticate, pickChallenge, type AuthChallenge } from './www_authenticate.ts';

export const DEFAULT_CONNECT_TIMEOUT_MS = 15_000;
/** A read that stalls this long fails rather than hanging a boot. */
export const DEFAULT_IDLE_TIMEOUT_MS = 60_000;
const MAX_REDIRECTS = 5;
const MAX_TOKEN_BYTES = 1024 * 1024;

export interface RegistryClientOptions {
  /** host[:port] of the registry API */
  host: string;
  tlsVerify: boolean;
  credentials?: Credentials | undefined;
  retry?: RetryPolicy;
  idleTimeoutMs?: number;
  /** The slowest transfer accepted; null: none (default DEFAULT_MIN_RATE). */
  minRate?: MinRate | null;
  connectTimeoutMs?: number;
  userAgent?: string;
  /** Private CAs and a client certificate for this registry (certs_d.ts). */
  tls?: RegistryTls | undefined;
}

export interface GetOptions {
  /** Token scope, e.g. "repository:library/busybox:pull". */
  scope?: string;
  accept?: readonly string[];
  headers?: Record<string, string>;
}

interface Token {
  value: string;
  /** ms since the epoch; refreshed a little before. */
  expiresAt: number;
}

export class RegistryClient {
  readonly host: string;
  readonly tlsVerify: boolean;
  readonly idleTimeoutMs: number;
  readonly minRate: MinRate | null;
  readonly credentials: Credentials | undefined;
  private readonly retry: RetryPolicy;
  private readonly connectTimeoutMs: number;
  private readonly userAgent: string;
  // One agent per client: close() ends every connection this pull opened.
  private readonly httpAgent = new http.Agent({ keepAlive: false });
  private readonly httpsAgent: https.Agent;
  private readonly tls: RegistryTls | undefined;
  private baseUrl: string | undefined;
  private pinging: Promise<void> | undefined;
  private challenge: AuthChallenge | undefined;
  private readonly tokens = new Map<string, Promise<Token>>();

  constructor(options: RegistryClientOptions) {
    this.host = options.host;
    this.tlsVerify = options.tlsVerify;
    this.credentials = options.credentials;
    this.retry = options.retry ?? DEFAULT_RETRY;
    this.idleTimeoutMs = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
    this.minRate = options.minRate === undefined ? DEFAULT_MIN_RATE : options.minRate;
    this.connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    this.userAgent = options.userAgent ?? 'berth';
    this.tls = options.tls;
    const t = options.tls;
    this.httpsAgent = new https.Agent({
      keepAlive: false,
      rejectUnauthorized: this.tlsVerify,
      // Node's `ca` replaces the system's roots: keep them and add the registry's.
      ...(t && t.ca.length > 0 ? { ca: [...tls.rootCertificates, ...t.ca] } : {}),
      ...(t?.cert !== undefined ? { cert: t.cert, key: t.key } : {}),
    });
  }

  /** GET /v2/: choose the scheme and learn the auth challenge. */
  ping(): Promise<void> {
    this.pinging ??= this.doPing();
    this.pinging.catch(() => {
      this.pinging = undefined;
    });
    return this.pinging;
  }

  private async doPing(): Promise<void> {
    const schemes = this.tlsVerify ? ['https'] : ['https', 'http'];
    let lastError: unknown;
    for (const scheme of schemes) {
      const base = `${scheme}://${this.host}`;
      try {
        const res = await this.send(new URL('/v2/', base), {});
        res.resume();
        if (res.statusCode === 200 || res.statusCode === 401) {
          this.baseUrl = base;
          if (res.statusCode === 401) this.challenge = pickChallenge(parseWWWAuthenticate(res.headers['www-authenticate']));
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
   * GET a registry path, authenticated as the registry asks; follows
   * redirects and retries as bounded. Returns the response for any status.
   */
  async get(path: string, options: GetOptions = {}): Promise<IncomingMessage> {
    await this.ping();
    const url = new URL(path, this.baseUrl);
    const headers: Record<string, string> = { ...options.headers };
    if (options.accept && options.accept.length > 0) headers['accept'] = options.accept.join(', ');
    let reauthenticated = false;
    // One attempt, as the retry loop sees it: a 401 that the client can answer
    // (the registry challenges only now, or the token expired or was revoked)
    // is answered once, inside the attempt: it is not a failure of the registry.
    const attempt = async (): Promise<IncomingMessage> => {
      const auth = await this.authorization(options.scope);
      const res = await this.follow(url, headers, auth);
      if (res.statusCode !== 401 || reauthenticated) return res;
      const challenge = pickChallenge(parseWWWAuthenticate(res.headers['www-authenticate']));
      const canAnswer = challenge?.scheme === 'bearer' || (challenge?.scheme === 'basic' && this.credentials !== undefined && auth === undefined);
      if (challenge === undefined || !canAnswer) return res;
      res.destroy();
      reauthenticated = true;
      this.challenge = challenge;
      if (options.scope !== undefined) this.tokens.delete(this.tokenKey(options.scope));
      return this.follow(url, headers, await this.authorization(options.scope));
    };
    return this.retrying(attempt);
  }

  /**
   * PUT, POST or HEAD a registry path (pushing blobs and manifests):
   * authenticated as get() is, answering one 401; no redirects followed (the
   * distribution API answers these with Location headers the caller reads).
   * A URL of another origin (an upload Location) gets no credentials.
   * `body` is held whole, so a retry can send it again.
   */
  async request(method: 'PUT' | 'POST' | 'HEAD', target: string | URL, options: GetOptions & { body?: Buffer } = {}): Promise<IncomingMessage> {
    await this.ping();
    const url = new URL(target, this.baseUrl);
    // A URL the registry handed out (an upload's Location) may be elsewhere: credentials never go there, nor off HTTPS.
    const own = url.origin === new URL(this.baseUrl!).origin;
    if (!own) this.checkScheme(url, `${method} ${JSON.stringify(url.href.slice(0, 120))}`, new URL(this.baseUrl!));
    const headers: Record<string, string> = { ...options.headers };
    if (options.accept && options.accept.length > 0) headers['accept'] = options.accept.join(', ');
    const send = async (): Promise<IncomingMessage> => {
      const auth = own ? await this.authorization(options.scope) : undefined;
      return this.raw(url, auth === undefined ? headers : { ...headers, authorization: auth }, method, options.body);
    };
    let reauthenticated = false;
    return this.retrying(async () => {
      const res = await send();
      if (res.statusCode !== 401 || reauthenticated || !own) return res;
      const challenge = pickChallenge(parseWWWAuthenticate(res.headers['www-authenticate']));
      if (challenge === undefined || (challenge.scheme === 'basic' && this.credentials === undefined)) return res;
      res.resume();
      reauthenticated = true;
      this.challenge = challenge;
      if (options.scope !== undefined) this.tokens.delete(this.tokenKey(options.scope));
      return send();
    });
  }

  /** GET a URL outside the registry (a layer's `urls`): no credentials, same retries and redirect rules. */
  async getExternal(url: URL, headers: Record<string, string> = {}): Promise<IncomingMessage> {
    this.checkScheme(url, url.href);
    return this.retrying(() => this.follow(url, headers, undefined));
  }

  async close(): Promise<void> {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }

  private async authorization(scope: string | undefined): Promise<string | undefined> {
    const c = this.challenge;
    if (c === undefined) return undefined;
    if (c.scheme === 'basic') return this.credentials === undefined ? undefined : basic(this.credentials);
    if (c.scheme === 'bearer' && scope !== undefined) return `Bearer ${await this.token(scope)}`;
    return undefined;
  }

  private tokenKey(scope: string): string {
    return `${this.challenge?.params['realm'] ?? ''} ${scope}`;
  }

  /** A cached token for `scope`, or a new one from the challenge's realm (shared by concurrent requests). */
  private async token(scope: string): Promise<string> {
    const key = this.tokenKey(scope);
    const cached = this.tokens.get(key);
    if (cached !== undefined) {
      const t = await cached.catch(() => undefined);
      if (t !== undefined && Date.now() < t.expiresAt) return t.value;
      if (this.tokens.get(key) === cached) this.tokens.delete(key);
    }
    let pending = this.tokens.get(key);
    if (pending === undefined) {
      pending = this.fetchToken(scope);
      this.tokens.set(key, pending);
      pending.catch(() => {
        if (this.tokens.get(key) === pending) this.tokens.delete(key);
      });
    }
    return (await pending).value;
  }

  private async fetchToken(scope: string): Promise<Token> {
    const c = this.challenge!;
    let u: URL;
    try {
      u = new URL(c.params['realm']!);
    } catch {
      throw new BerthError('REGISTRY_ERROR', `${this.host}: the auth challenge's realm ${JSON.stringify(c.params['realm']?.slice(0, 200))} is not a URL`, { hint: 'the registry is misconfigured' });
    }
    if (u.protocol !== 'https:' && !(u.protocol === 'http:' && !this.tlsVerify)) {
      throw new BerthError('REGISTRY_ERROR', `${this.host}: the token service ${u.origin} is not HTTPS`, {
        hint: 'refusing to ask for a token in the clear; use --tls-verify=false only for trusted local registries',
      });
    }
    if (c.params['service'] !== undefined) u.searchParams.set('service', c.params['service']);
    u.searchParams.set('scope', scope);
    const headers: Record<string, string> = {};
    if (this.credentials !== undefined) {
      headers['authorization'] = basic(this.credentials);
      u.searchParams.set('account', this.credentials.username);
    }
    const requested = Date.now();
    let res: IncomingMessage;
    try {
      res = await this.retrying(() => this.raw(u, headers));
    } catch (e) {
      if (e instanceof BerthError) throw e;
      throw new BerthError('REGISTRY_UNREACHABLE', `${this.host}: cannot reach the token service ${u.host}: ${describeNetworkError(e)}`, { hint: 'check the network', cause: e });
    }
    const body = await readCapped(res, MAX_TOKEN_BYTES, `token from ${u.host}`, this.minRate);
    if (res.statusCode === 401 || res.statusCode === 403) {
      throw new BerthError('IMAGE_NOT_FOUND', `${this.host}: the token service ${u.host} refused ${this.credentials ? `the credentials of ${this.credentials.username}` : 'anonymous access'} (${res.statusCode})`, {
        hint: this.credentials ? 'check the credentials (--creds or the auth file)' : 'the image needs credentials: pass --creds USER:PASS or log in (auth.json)',
      });
    }
    if (res.statusCode !== 200) throw new BerthError('REGISTRY_ERROR', `${this.host}: token request to ${u.host} answered ${res.statusCode}`, { hint: 'the token service failed; try again later' });
    let token: unknown;
    let expiresIn: unknown;
    try {
      const o = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
      token = o['token'] ?? o['access_token'];
      expiresIn = o['expires_in'];
    } catch {
      token = undefined;
    }
    if (typeof token !== 'string' || token === '' || !/^[\x21-\x7e]+$/.test(token)) {
      throw new BerthError('REGISTRY_ERROR', `${this.host}: the token service ${u.host} sent no usable token`, { hint: 'the registry is misconfigured' });
    }
    // The spec's default lifetime is 60 s; refresh a little before the end.
    const lifetimeMs = (typeof expiresIn === 'number' && Number.isFinite(expiresIn) && expiresIn > 0 ? expiresIn : 60) * 1000;
    return { value: token, expiresAt: requested + lifetimeMs - Math.min(5_000, lifetimeMs / 10) };
  }

  private async retrying(fn: () => Promise<IncomingMessage>): Promise<IncomingMessage> {
    for (let attempt = 1; ; attempt++) {
      let res: IncomingMessage;
      try {
        res = await fn();
      } catch (e) {
        if (isTransientNetworkError(e) && attempt < this.retry.attempts) {
          await sleep(retryDelay(this.retry, attempt, undefined));
          continue;
        }
        throw e;
      }
      if (isRetryableStatus(res.statusCode) && attempt < this.retry.attempts) {
        const retryAfter = res.headers['retry-after'];
        res.destroy();
        await sleep(retryDelay(this.retry, attempt, retryAfter));
        continue;
      }
      return res;
    }
  }

  private send(url: URL, headers: Record<string, string>): Promise<IncomingMessage> {
    return this.retrying(() => this.raw(url, headers));
  }

  /** http(s) only; plain HTTP only with TLS verification off, and never as a step down from HTTPS. */
  private checkScheme(next: URL, what: string, from?: URL): void {
    const downgrade = from?.protocol === 'https:' && next.protocol === 'http:';
    if (next.protocol !== 'https:' && !(next.protocol === 'http:' && !this.tlsVerify && !downgrade)) {
      throw new BerthError('REGISTRY_ERROR', `${this.host}: refusing ${what}: ${downgrade ? 'a step down from HTTPS to plain HTTP' : `${next.protocol.slice(0, 20)} is not HTTPS`}`, {
        hint: downgrade ? 'the registry (or something in between) tried to leave TLS; fix the registry or its storage redirect' : 'refusing to leave TLS; use --tls-verify=false only for trusted local registries',
      });
    }
  }

  /** Follow redirects; Authorization goes only to the registry's own origin. */
  private async follow(start: URL, headers: Record<string, string>, authorization: string | undefined): Promise<IncomingMessage> {
    const origin = this.baseUrl === undefined ? undefined : new URL(this.baseUrl).origin;
    let url = start;
    for (let hop = 0; ; hop++) {
      const own = authorization !== undefined && url.origin === origin;
      const res = await this.raw(url, own ? { ...headers, authorization } : headers);
      const location = res.headers.location;
      if (res.statusCode !== undefined && [301, 302, 303, 307, 308].includes(res.statusCode) && location) {
        res.destroy();
        if (hop >= MAX_REDIRECTS) throw new BerthError('REGISTRY_ERROR', `${this.host}: too many redirects for ${start.pathname}`, { hint: 'the registry is misconfigured' });
        let next: URL;
        try {
          next = new URL(location, url);
        } catch {
          throw new BerthError('REGISTRY_ERROR', `${this.host}: redirect to an invalid URL for ${start.pathname}`, { hint: 'the registry is misconfigured' });
        }
        this.checkScheme(next, `the redirect of ${start.pathname} to ${JSON.stringify(next.href.slice(0, 120))}`, url);
        url = next;
        continue;
      }
      return res;
    }
  }

  private raw(url: URL, headers: Record<string, string>, method = 'GET', body?: Buffer): Promise<IncomingMessage> {
    const secure = url.protocol === 'https:';
    const mod = secure ? https : http;
    return new Promise((resolve, reject) => {
      const req = mod.request(
        url,
        {
          method,
          headers: { 'user-agent': this.userAgent, ...headers, ...(body === undefined ? {} : { 'content-length': String(body.length) }) },
          timeout: this.connectTimeoutMs,
          agent: secure ? this.httpsAgent : this.httpAgent,
        },
        (res) => {
          // After the headers, a stalled body read errors the stream (blob streams replace this with their own timer).
          res.socket.setTimeout(this.idleTimeoutMs, () => res.destroy(this.stalled(url)));
          resolve(res);
        },
      );
      req.on('timeout', () => req.destroy(Object.assign(new Error('connection timed out'), { code: 'ETIMEDOUT' })));
      req.on('error', (e) => reject(this.malformed(url, e) ?? e));
      req.end(body);
    });
  }

  /** A response Node's HTTP parser refused (oversized or invalid headers) as berth's error; undefined for other errors. */
  private malformed(url: URL, e: unknown): BerthError | undefined {
    const code = errnoCode(e);
    if (code === 'HPE_HEADER_OVERFLOW') {
      return new BerthError('REGISTRY_ERROR', `${this.host}: the registry sent oversized headers for ${url.pathname} (over ${Math.round(http.maxHeaderSize / 1024)} KiB)`, {
        hint: 'the registry or a proxy in front of it is misbehaving; fix it or use another mirror',
      });
    }
    if (code?.startsWith('HPE_')) {
      return new BerthError('REGISTRY_ERROR', `${this.host}: the registry sent a malformed HTTP response for ${url.pathname} (${code})`, {
        hint: 'the registry or a proxy in front of it is misbehaving; fix it or use another mirror',
      });
    }
    return undefined;
  }

  stalled(url: URL): BerthError {
    return new BerthError('REGISTRY_UNREACHABLE', `${this.host}: no data for ${this.idleTimeoutMs / 1000}s while reading ${url.pathname}`, { hint: 'the network or registry stalled; try again' });
  }

  /** A verification failure's fix: the registry's CA in certs.d first, turning verification off last. */
  private tlsHint(): string {
    const where = this.tls ? `the CA certificates in ${this.tls.from.join(', ')} do not verify it; add the right one (*.crt)` : `put the registry's CA certificate in ${CERTS_D_DIRS[0]}/${this.host}/ca.crt (or --cert-dir DIR)`;
    return `${where}; for a trusted local registry without TLS, --tls-verify=false`;
  }

  unreachable(e: unknown): BerthError {
    const why = describeNetworkError(e);
    return new BerthError('REGISTRY_UNREACHABLE', `cannot reach registry ${this.host}: ${why}`, {
      hint: this.tlsVerify && why.startsWith('TLS') ? this.tlsHint() : 'check the address and that the registry is running',
      cause: e,
    });
  }
}

function basic(c: Credentials): string {
  return `Basic ${Buffer.from(`${c.username}:${c.password}`, 'utf8').toString('base64')}`;
}

export function describeNetworkError(e: unknown): string {
  const code = errnoCode(e);
  return code === 'ECONNREFUSED' ? 'connection refused'
    : code === 'ENOTFOUND' || code === 'EAI_AGAIN' ? 'host not found'
    : code === 'ETIMEDOUT' ? 'connection timed out'
    : code === 'ECONNRESET' ? 'connection reset'
    : code === 'EPROTO' || code?.startsWith('ERR_SSL') || code?.startsWith('ERR_TLS') || code === 'DEPTH_ZERO_SELF_SIGNED_CERT' || code === 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' || code === 'SELF_SIGNED_CERT_IN_CHAIN' ? `TLS failed (${code})`
    : (e as Error)?.message ?? String(e);
}

/** Read a whole body, refusing more than `cap` bytes, or a drip below `minRate`. */
export async function readCapped(res: IncomingMessage, cap: number, what: string, minRate: MinRate | null = DEFAULT_MIN_RATE): Promise<Buffer> {
  const declared = Number(res.headers['content-length']);
  if (Number.isFinite(declared) && declared > cap) {
    res.destroy();
    throw new BerthError('MANIFEST_INVALID', `${what} is ${declared} bytes, the limit is ${cap}`, { hint: 'the registry sent an oversized document; the image is unusable' });
  }
  const chunks: Buffer[] = [];
  let total = 0;
  const watch = new RateWatch(minRate, (bytes, elapsedMs) => res.destroy(tooSlow(what, minRate!, bytes, elapsedMs)));
  watch.start();
  try {
    for await (const chunk of res) {
      total += (chunk as Buffer).length;
      watch.add((chunk as Buffer).length);
      if (total > cap) {
        res.destroy();
        throw new BerthError('MANIFEST_INVALID', `${what} is larger than the limit of ${cap} bytes`, { hint: 'the registry sent an oversized document; the image is unusable' });
      }
      chunks.push(chunk as Buffer);
    }
  } finally {
    watch.stop();
  }
  return Buffer.concat(chunks);
}
