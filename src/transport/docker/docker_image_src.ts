/**
 * Reading an image from a registry (OCI distribution v2), through the
 * places registries.conf names for it: its mirrors in order, then the
 * primary location. The first place that serves the top-level manifest is
 * used for the rest of the pull; a later request that fails there falls back
 * to the remaining places (content is addressed by digest, so any copy will
 * do). Blobs are resumable; a blob the registries lack is fetched from the
 * descriptor's `urls` (non-distributable layers).
 */
import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import { BerthError, isBerthError } from '../../errors.ts';
import { parseDigest, type Digest } from '../../image/digest.ts';
import { MANIFEST_ACCEPT, MAX_MANIFEST_BYTES, type Platform } from '../../image/manifest.ts';
import { formatDockerReference, registryApiHost, type DockerReference } from '../../image/reference.ts';
import { loadRegistriesConf, pullSources, type RegistriesConf } from '../../image/registries-conf.ts';
import type { BlobDescriptor, BlobOptions, ImageSource, SourceOptions, UntrustedManifest } from '../types.ts';
import { CredentialStore } from './auth_file.ts';
import { DEFAULT_RESUME_ATTEMPTS, ResumableBlobStream } from './blob_stream.ts';
import { loadRegistryTls } from './certs_d.ts';
import { describeNetworkError, readCapped, RegistryClient } from './client.ts';
import { minRateFromEnv } from './min_rate.ts';
import { isJsonObject, parseStrictJson, type JsonValue } from '../../strict-json.ts';
import { retryPolicy } from './retry.ts';

const TAGS_PAGE = 1000;
const MAX_TAG_PAGES = 100;
const MAX_TAGS = 10_000;
const MAX_TAG_LIST_BYTES = 4 * 1024 * 1024;
const TAG_RE = /^[\w][\w.-]{0,127}$/;

/** One place to pull from. */
interface Endpoint {
  readonly ref: DockerReference;
  readonly client: RegistryClient;
  readonly mirror: boolean;
  readonly description: string;
}

/** Errors after which another place may still have the content. */
function fallsBack(e: unknown): boolean {
  return isBerthError(e) && (e.code === 'IMAGE_NOT_FOUND' || e.code === 'REGISTRY_UNREACHABLE' || e.code === 'REGISTRY_ERROR');
}

export interface DockerSourceContext {
  conf?: RegistriesConf;
  credentials?: CredentialStore;
  platform?: Platform;
}

export class DockerImageSource implements ImageSource {
  readonly reference: DockerReference;
  readonly description: string;
  readonly platform: Platform | undefined;
  private readonly endpoints: readonly Endpoint[];
  private readonly resumeAttempts: number;
  private readonly retryBaseMs: number;
  private readonly external: RegistryClient;
  /** Index of the endpoint that served the top-level manifest. */
  private preferred = 0;
  private top: Promise<UntrustedManifest> | undefined;

  private constructor(reference: DockerReference, endpoints: Endpoint[], external: RegistryClient, options: SourceOptions, platform: Platform | undefined) {
    this.reference = reference;
    this.description = formatDockerReference(reference);
    this.endpoints = endpoints;
    this.external = external;
    this.platform = platform;
    this.resumeAttempts = options.resumeAttempts ?? DEFAULT_RESUME_ATTEMPTS;
    this.retryBaseMs = retryPolicy(options.retry).baseDelayMs;
  }

  /** A source for `reference` as registries.conf routes it (blocked registries fail here). */
  static async open(reference: DockerReference, options: SourceOptions, context: DockerSourceContext = {}): Promise<DockerImageSource> {
    const conf = context.conf ?? (await loadRegistriesConf(options.registriesConf));
    const credentials = context.credentials ?? new CredentialStore({ ...(options.creds === undefined ? {} : { creds: options.creds }), ...(options.authFile === undefined ? {} : { authFile: options.authFile }) });
    const common = {
      retry: retryPolicy(options.retry),
      ...(options.idleTimeoutMs === undefined ? {} : { idleTimeoutMs: options.idleTimeoutMs }),
      minRate: options.minRate === undefined ? minRateFromEnv() : options.minRate,
      ...(options.connectTimeoutMs === undefined ? {} : { connectTimeoutMs: options.connectTimeoutMs }),
    };
    const endpoints: Endpoint[] = [];
    for (const s of pullSources(reference, conf)) {
      // An explicit per-command setting beats registries.conf in both directions.
      const tlsVerify = options.tlsVerify ?? !s.insecure;
      const host = registryApiHost(s.ref);
      const tls = await loadRegistryTls(host, options.certDir);
      const client = new RegistryClient({ host, tlsVerify, credentials: await credentials.lookup(s.ref.registry, s.ref.repository), tls, ...common });
      endpoints.push({ ref: s.ref, client, mirror: s.mirror, description: formatDockerReference(s.ref) });
    }
    const external = new RegistryClient({ host: 'a layer URL', tlsVerify: options.tlsVerify ?? true, ...common });
    return new DockerImageSource(reference, endpoints, external, options, context.platform);
  }

  async getManifest(digest?: Digest): Promise<UntrustedManifest> {
    if (digest === undefined) {
      // The top-level manifest is fetched once (a short-name lookup or trust check may have asked already).
      this.top ??= this.fetchManifest(undefined, true);
      this.top.catch(() => {
        this.top = undefined;
      });
      return this.top;
    }
    return this.fetchManifest(digest, digest === undefined);
  }

  private async fetchManifest(digest: Digest | undefined, pick: boolean): Promise<UntrustedManifest> {
    return this.tryEndpoints(pick, async (e, i) => {
      const ref = digest ?? e.ref.digest ?? e.ref.tag ?? 'latest';
      const res = await this.request(e, `/v2/${e.ref.repository}/manifests/${ref}`, { accept: MANIFEST_ACCEPT });
      if (res.statusCode === 404) {
        res.resume();
        throw new BerthError('IMAGE_NOT_FOUND', `image ${e.description} not found${digest ? ` (manifest ${digest})` : ''}`, {
          hint: 'check the repository name and tag (skopeo list-tags docker://REGISTRY/REPO lists the tags)',
        });
      }
      await this.expectOk(e, res, `manifest of ${e.description}`);
      const untrustedBytes = await readCapped(res, MAX_MANIFEST_BYTES, `manifest of ${e.description}`, e.client.minRate);
      const header = res.headers['docker-content-digest'];
      let claimedDigest: Digest | undefined;
      if (typeof header === 'string' && header !== '') claimedDigest = parseDigest(header, 'Docker-Content-Digest header');
      const contentType = res.headers['content-type']?.split(';')[0]?.trim();
      if (pick) this.preferred = i;
      return { untrustedBytes, mediaType: contentType || undefined, claimedDigest };
    });
  }

  async getBlob(descriptor: BlobDescriptor, options: BlobOptions = {}): Promise<Readable> {
    const offset = options.offset ?? 0;
    if (!Number.isSafeInteger(offset) || offset < 0 || offset > descriptor.size) {
      throw new BerthError('INTERNAL', `blob offset ${offset} is outside ${descriptor.digest} (${descriptor.size} bytes)`);
    }
    if (offset === descriptor.size) return Readable.from([]);
    const what = `blob ${descriptor.digest} of ${this.description}`;
    const open = (from: number) => this.openBlob(descriptor, from);
    const first = await open(offset);
    return new ResumableBlobStream(open, first, {
      size: descriptor.size,
      offset,
      resumeAttempts: this.resumeAttempts,
      idleTimeoutMs: this.endpoints[0]!.client.idleTimeoutMs,
      minRate: this.endpoints[0]!.client.minRate,
      backoffMs: this.retryBaseMs,
      what,
    });
  }

  private async openBlob(descriptor: BlobDescriptor, offset: number): Promise<IncomingMessage> {
    const headers: Record<string, string> = offset > 0 ? { range: `bytes=${offset}-` } : {};
    try {
      return await this.tryEndpoints(false, async (e) => {
        const res = await this.request(e, `/v2/${e.ref.repository}/blobs/${descriptor.digest}`, { headers });
        if (res.statusCode === 404) {
          res.resume();
          throw new BerthError('IMAGE_NOT_FOUND', `blob ${descriptor.digest} of ${e.description} is missing from the registry`, {
            hint: 'the image was pushed incompletely or garbage-collected; push it again',
          });
        }
        await this.expectOk(e, res, `blob ${descriptor.digest}`);
        return res;
      });
    } catch (e) {
      const urls = foreignUrls(descriptor);
      if (urls.length === 0 || !(isBerthError(e) && e.code === 'IMAGE_NOT_FOUND')) throw e;
      return this.openForeign(descriptor, urls, headers, e);
    }
  }

  /** A non-distributable layer from its own URLs; the digest check makes any source acceptable. */
  private async openForeign(descriptor: BlobDescriptor, urls: URL[], headers: Record<string, string>, registryError: BerthError): Promise<IncomingMessage> {
    const failures: string[] = [`registry: ${registryError.message}`];
    for (const url of urls) {
      try {
        const res = await this.external.getExternal(url, headers);
        if (res.statusCode === 200 || res.statusCode === 206) return res;
        res.resume();
        failures.push(`${url.origin}${url.pathname}: HTTP ${res.statusCode}`);
      } catch (e) {
        failures.push(`${url.origin}${url.pathname}: ${isBerthError(e) ? e.message : describeNetworkError(e)}`);
      }
    }
    throw new BerthError('IMAGE_NOT_FOUND', `blob ${descriptor.digest} of ${this.description} is neither in the registry nor at its URLs`, {
      hint: 'the layer is non-distributable and its URLs failed; make it available or use another image',
      details: failures,
    });
  }

  /**
   * The repository's tags (GET /v2/REPO/tags/list, pages followed), from
   * the primary location only: mirrors may lag. Untrusted names: only
   * those that are valid tags come back, at most MAX_TAGS.
   */
  async listTags(): Promise<string[]> {
    const e = this.endpoints.find((x) => !x.mirror) ?? this.endpoints[0]!;
    const tags: string[] = [];
    let next: string | undefined = `/v2/${e.ref.repository}/tags/list?n=${TAGS_PAGE}`;
    for (let page = 0; next !== undefined && page < MAX_TAG_PAGES && tags.length < MAX_TAGS; page++) {
      const res = await this.request(e, next, { accept: ['application/json'] });
      if (res.statusCode === 404) {
        res.resume();
        throw new BerthError('IMAGE_NOT_FOUND', `repository ${e.description} not found`, { hint: 'check the repository name' });
      }
      await this.expectOk(e, res, `tag list of ${e.description}`);
      const link = res.headers['link'];
      const body = await readCapped(res, MAX_TAG_LIST_BYTES, `tag list of ${e.description}`, e.client.minRate);
      let untrusted: JsonValue;
      try {
        untrusted = parseStrictJson(body);
      } catch (err) {
        throw new BerthError('REGISTRY_ERROR', `the tag list of ${e.description} is not JSON (${(err as Error).message})`, { hint: 'the registry is misbehaving' });
      }
      const list = isJsonObject(untrusted) ? untrusted['tags'] : undefined;
      // distribution answers "tags": null for a repository without tags
      if (list !== null && list !== undefined && !Array.isArray(list)) throw new BerthError('REGISTRY_ERROR', `the tag list of ${e.description} has no tags array`, { hint: 'the registry is misbehaving' });
      for (const t of list ?? []) if (typeof t === 'string' && TAG_RE.test(t) && tags.length < MAX_TAGS) tags.push(t);
      // Link: </v2/REPO/tags/list?last=X&n=N>; rel="next" — followed only on the same registry path.
      const m = typeof link === 'string' ? /^<(\/v2\/[^>]*)>;\s*rel="next"/.exec(link) : null;
      next = m && m[1]!.startsWith(`/v2/${e.ref.repository}/tags/list?`) ? m[1] : undefined;
    }
    return [...new Set(tags)];
  }

  async close(): Promise<void> {
    for (const e of this.endpoints) await e.client.close();
    await this.external.close();
  }

  /** Run `fn` on the endpoints from the preferred one on; the first success wins. */
  private async tryEndpoints<T>(fromStart: boolean, fn: (e: Endpoint, index: number) => Promise<T>): Promise<T> {
    const n = this.endpoints.length;
    const start = fromStart ? 0 : this.preferred;
    const errors: { e: Endpoint; error: unknown }[] = [];
    for (let k = 0; k < n; k++) {
      const i = (start + k) % n;
      const e = this.endpoints[i]!;
      try {
        return await fn(e, i);
      } catch (error) {
        if (!fallsBack(error) || k === n - 1) {
          if (errors.length === 0) throw error;
          const primary = error instanceof BerthError ? error : e.client.unreachable(error);
          throw new BerthError(primary.code, primary.message, {
            ...(primary.hint === undefined ? {} : { hint: primary.hint }),
            details: [...errors.map((x) => `${x.e.mirror ? 'mirror ' : ''}${x.e.description}: ${(x.error as Error).message}`), ...primary.details],
            cause: primary,
          });
        }
        errors.push({ e, error });
      }
    }
    throw new BerthError('INTERNAL', `no registry endpoints for ${this.description}`);
  }

  private async request(e: Endpoint, path: string, options: { accept?: readonly string[]; headers?: Record<string, string> }): Promise<IncomingMessage> {
    try {
      return await e.client.get(path, { scope: `repository:${e.ref.repository}:pull`, ...options });
    } catch (err) {
      if (err instanceof BerthError) throw err;
      throw e.client.unreachable(err);
    }
  }

  private async expectOk(e: Endpoint, res: IncomingMessage, what: string): Promise<void> {
    if (res.statusCode === 200 || res.statusCode === 206) return;
    const body = await readCapped(res, 64 * 1024, `error body for ${what}`, e.client.minRate).catch(() => Buffer.alloc(0));
    let detail = '';
    try {
      const errors = (JSON.parse(body.toString('utf8')) as { errors?: { code?: string; message?: string }[] }).errors;
      detail = errors?.map((x) => `${x.code ?? ''}${x.message ? `: ${x.message}` : ''}`).join('; ') ?? '';
    } catch {
      // not a distribution error body
    }
    // Registry error text is untrusted: keep it to one printable line.
    detail = detail.replace(/[^\x20-\x7e]/g, '?').slice(0, 200);
    if (res.statusCode === 401 || res.statusCode === 403) {
      const user = e.client.credentials?.username;
      throw new BerthError('IMAGE_NOT_FOUND', `${what}: access denied by ${e.client.host}${user === undefined ? '' : ` to ${user}`} (${res.statusCode}${detail ? ` ${detail}` : ''})`, {
        hint: user === undefined ? 'the repository does not exist or needs credentials (--creds USER:PASS or an auth file)' : 'the repository does not exist, or the credentials are wrong or lack access',
      });
    }
    throw new BerthError('REGISTRY_ERROR', `${what}: ${e.client.host} answered ${res.statusCode}${detail ? ` (${detail})` : ''}`, {
      hint: 'the registry failed; try again later',
    });
  }
}

/** The descriptor's http(s) URLs; anything else is ignored (the manifest is untrusted input). */
function foreignUrls(d: BlobDescriptor): URL[] {
  const out: URL[] = [];
  if (!Array.isArray(d.urls)) return out;
  for (const u of d.urls.slice(0, 16)) {
    if (typeof u !== 'string') continue;
    try {
      const url = new URL(u);
      if (url.protocol === 'https:' || url.protocol === 'http:') out.push(url);
    } catch {
      // not a URL
    }
  }
  return out;
}
