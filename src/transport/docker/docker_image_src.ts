/** Reading an image from a registry (OCI distribution v2). */
import type { Readable } from 'node:stream';
import { BerthError } from '../../errors.ts';
import { parseDigest, type Digest } from '../../image/digest.ts';
import { MANIFEST_ACCEPT, MAX_MANIFEST_BYTES, type Descriptor } from '../../image/manifest.ts';
import { formatReference, registryApiHost, type DockerReference } from '../../image/reference.ts';
import type { ImageSource, SourceOptions, UntrustedManifest } from '../types.ts';
import { readCapped, RegistryClient } from './client.ts';

export class DockerImageSource implements ImageSource {
  readonly reference: DockerReference;
  readonly description: string;
  private readonly client: RegistryClient;
  private readonly scope: string;

  constructor(reference: DockerReference, options: SourceOptions) {
    this.reference = reference;
    this.description = formatReference(reference);
    this.client = new RegistryClient({ host: registryApiHost(reference), tlsVerify: options.tlsVerify });
    this.scope = `repository:${reference.repository}:pull`;
  }

  async getManifest(digest?: Digest): Promise<UntrustedManifest> {
    const ref = digest ?? this.reference.digest ?? this.reference.tag ?? 'latest';
    const res = await this.request(`/v2/${this.reference.repository}/manifests/${ref}`, MANIFEST_ACCEPT);
    if (res.statusCode === 404) {
      res.resume();
      throw new BerthError('IMAGE_NOT_FOUND', `image ${this.description} not found${digest ? ` (manifest ${digest})` : ''}`, {
        hint: 'check the repository name and tag (skopeo list-tags docker://REGISTRY/REPO lists the tags)',
      });
    }
    await this.expectOk(res, `manifest of ${this.description}`);
    const untrustedBytes = await readCapped(res, MAX_MANIFEST_BYTES, `manifest of ${this.description}`);
    const header = res.headers['docker-content-digest'];
    let claimedDigest: Digest | undefined;
    if (typeof header === 'string' && header !== '') claimedDigest = parseDigest(header, 'Docker-Content-Digest header');
    const contentType = res.headers['content-type']?.split(';')[0]?.trim();
    return { untrustedBytes, mediaType: contentType || undefined, claimedDigest };
  }

  async getBlob(descriptor: Descriptor): Promise<Readable> {
    const res = await this.request(`/v2/${this.reference.repository}/blobs/${descriptor.digest}`, []);
    if (res.statusCode === 404) {
      res.resume();
      throw new BerthError('IMAGE_NOT_FOUND', `blob ${descriptor.digest} of ${this.description} is missing from the registry`, {
        hint: 'the image was pushed incompletely or garbage-collected; push it again',
      });
    }
    await this.expectOk(res, `blob ${descriptor.digest}`);
    return res;
  }

  async close(): Promise<void> {
    // Connections are not kept alive; nothing to release.
  }

  private async request(path: string, accept: readonly string[]) {
    try {
      return await this.client.get(path, this.scope, accept);
    } catch (e) {
      if (e instanceof BerthError) throw e;
      throw this.client.unreachable(e);
    }
  }

  private async expectOk(res: import('node:http').IncomingMessage, what: string): Promise<void> {
    if (res.statusCode === 200) return;
    const body = await readCapped(res, 64 * 1024, `error body for ${what}`).catch(() => Buffer.alloc(0));
    let detail = '';
    try {
      const errors = (JSON.parse(body.toString('utf8')) as { errors?: { code?: string; message?: string }[] }).errors;
      detail = errors?.map((e) => `${e.code ?? ''}${e.message ? `: ${e.message}` : ''}`).join('; ') ?? '';
    } catch {
      // not a distribution error body
    }
    // Registry error text is untrusted: keep it to one printable line.
    detail = detail.replace(/[^\x20-\x7e]/g, '?').slice(0, 200);
    if (res.statusCode === 401 || res.statusCode === 403) {
      throw new BerthError('IMAGE_NOT_FOUND', `${what}: access denied by ${this.client.host} (${res.statusCode}${detail ? ` ${detail}` : ''})`, {
        hint: 'the repository does not exist or needs credentials',
      });
    }
    throw new BerthError('REGISTRY_ERROR', `${what}: ${this.client.host} answered ${res.statusCode}${detail ? ` (${detail})` : ''}`, {
      hint: 'the registry failed; try again later',
    });
  }
}
