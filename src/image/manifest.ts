/**
 * Manifests, indexes and image configs (OCI image-spec and Docker schema 2).
 * Everything here parses untrusted bytes: sizes are capped before parsing,
 * JSON is parsed strictly (a duplicated member is refused: parsers disagree
 * on which copy wins, so another tool could see a different image), and
 * every field used later is type-checked; unknown fields are ignored.
 */
import { BerthError } from '../errors.ts';
import { isJsonObject, JsonSyntaxError, parseStrictJson, type JsonObject, type JsonValue } from '../strict-json.ts';
import { parseDigest, type Digest } from './digest.ts';

export const MediaType = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
} as const;

/** Sent in Accept: without the schema 2 types Debian's registry converts to schema 1 or answers 404. */
export const MANIFEST_ACCEPT = [MediaType.ociManifest, MediaType.ociIndex, MediaType.dockerManifest, MediaType.dockerManifestList];

/** Manifests, indexes and configs larger than this are refused unread (as containers/image does). */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
export const MAX_CONFIG_BYTES = 4 * 1024 * 1024;
/**
 * More layers than this are refused: Docker cannot build or run an image
 * deeper than 127 layers, and each layer costs a request, a record and a
 * merge step, so a longer list is an attack on the host, not an image.
 */
export const MAX_LAYERS = 127;
/** Entries of an index; real ones list a few platforms (and attestations). */
export const MAX_INDEX_ENTRIES = 1000;

export type Compression = 'gzip' | 'zstd' | 'none';

export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  platform?: Platform;
  annotations?: Record<string, string>;
  /** The artifact type of the manifest it points at (referrers indexes list it; image-spec 1.1). */
  artifactType?: string;
}

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

export interface ImageManifest {
  kind: 'manifest';
  mediaType: string;
  config: Descriptor;
  layers: Descriptor[];
}

export interface ImageIndex {
  kind: 'index';
  mediaType: string;
  manifests: Descriptor[];
}

export interface ImageConfig {
  architecture: string;
  os: string;
  config: {
    User?: string;
    Env?: string[];
    Entrypoint?: string[];
    Cmd?: string[];
    WorkingDir?: string;
    Labels?: Record<string, string>;
    ExposedPorts?: Record<string, unknown>;
    StopSignal?: string;
  };
  rootfs: { type: 'layers'; diff_ids: Digest[] };
}

function bad(what: string, why: string): BerthError {
  return new BerthError('MANIFEST_INVALID', `${what} is invalid: ${why}`, {
    hint: 'the image is malformed or was not built for this tool; rebuild or re-push it',
  });
}

type Json = JsonValue;
const isObject = (v: Json | undefined): v is JsonObject => isJsonObject(v);

/** Untrusted bytes as a JSON object: capped, strict (no duplicate members, valid UTF-8). */
export function parseJson(bytes: Buffer, what: string, cap: number): JsonObject {
  if (bytes.length > cap) throw bad(what, `it is ${bytes.length} bytes, the limit is ${cap}`);
  let v: JsonValue;
  try {
    v = parseStrictJson(bytes);
  } catch (e) {
    if (!(e instanceof JsonSyntaxError)) throw e;
    throw bad(what, `not JSON (${e.message})`);
  }
  if (!isObject(v)) throw bad(what, 'not a JSON object');
  return v;
}

function str(o: JsonObject, key: string, what: string): string {
  const v = o[key];
  if (typeof v !== 'string') throw bad(what, `"${key}" must be a string`);
  return v;
}

function optStr(o: JsonObject, key: string, what: string): string | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw bad(what, `"${key}" must be a string`);
  return v;
}

function optStrArray(o: JsonObject, key: string, what: string): string[] | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw bad(what, `"${key}" must be a list of strings`);
  return v as string[];
}

function optStrMap(o: JsonObject, key: string, what: string): Record<string, string> | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (!isObject(v) || Object.values(v).some((x) => typeof x !== 'string')) throw bad(what, `"${key}" must map strings to strings`);
  return v as Record<string, string>;
}

function parseDescriptor(v: Json | undefined, what: string): Descriptor {
  if (!isObject(v)) throw bad(what, 'a descriptor is not an object');
  const size = v['size'];
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw bad(what, 'a descriptor size is not a non-negative integer');
  const d: Descriptor = { mediaType: str(v, 'mediaType', what), digest: parseDigest(str(v, 'digest', what), `${what} descriptor digest`), size };
  const p = v['platform'];
  if (isObject(p)) {
    const variant = optStr(p, 'variant', what);
    d.platform = { os: str(p, 'os', what), architecture: str(p, 'architecture', what), ...(variant === undefined ? {} : { variant }) };
  }
  const annotations = optStrMap(v, 'annotations', what);
  if (annotations) d.annotations = annotations;
  const artifactType = optStr(v, 'artifactType', what);
  if (artifactType !== undefined) d.artifactType = artifactType;
  return d;
}

/**
 * Parse a manifest or index. `declaredType` is the Content-Type (or the
 * descriptor's mediaType) it was served with; it must agree with the body.
 */
export function parseManifest(bytes: Buffer, declaredType: string | undefined, what = 'manifest'): ImageManifest | ImageIndex {
  const o = parseJson(bytes, what, MAX_MANIFEST_BYTES);
  if (o['schemaVersion'] !== 2) throw bad(what, `schemaVersion ${JSON.stringify(o['schemaVersion'])} is not supported (only 2)`);
  const bodyType = optStr(o, 'mediaType', what);
  let mediaType = bodyType ?? declaredType;
  if (bodyType !== undefined && declaredType !== undefined && declaredType !== bodyType && declaredType !== 'application/json') {
    throw bad(what, `served as ${declaredType} but its mediaType is ${bodyType}`);
  }
  if (mediaType === undefined) mediaType = Array.isArray(o['manifests']) ? MediaType.ociIndex : MediaType.ociManifest;
  if (mediaType === MediaType.ociIndex || mediaType === MediaType.dockerManifestList) {
    const ms = o['manifests'];
    if (!Array.isArray(ms)) throw bad(what, '"manifests" must be a list');
    if (ms.length > MAX_INDEX_ENTRIES) throw bad(what, `it lists ${ms.length} manifests, the limit is ${MAX_INDEX_ENTRIES}`);
    return { kind: 'index', mediaType, manifests: ms.map((m) => parseDescriptor(m, what)) };
  }
  if (mediaType === MediaType.ociManifest || mediaType === MediaType.dockerManifest) {
    const layers = o['layers'];
    if (!Array.isArray(layers)) throw bad(what, '"layers" must be a list');
    if (layers.length > MAX_LAYERS) throw bad(what, `it has ${layers.length} layers, the limit is ${MAX_LAYERS}`);
    const config = parseDescriptor(o['config'], what);
    if (config.size > MAX_CONFIG_BYTES) throw bad(what, `its config is ${config.size} bytes, the limit is ${MAX_CONFIG_BYTES}`);
    return { kind: 'manifest', mediaType, config, layers: layers.map((l) => parseDescriptor(l, what)) };
  }
  throw bad(what, `media type ${mediaType} is not supported (schema 1 manifests are obsolete)`);
}

/** The compression of a layer from its media type, or an error for types berth cannot apply. */
export function layerCompression(mediaType: string): Compression {
  switch (mediaType) {
    case MediaType.ociLayerGzip:
    case MediaType.dockerLayerGzip:
    case 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip':
    case 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip':
      return 'gzip';
    case MediaType.ociLayerZstd:
    case 'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd':
      return 'zstd';
    case MediaType.ociLayer:
    case 'application/vnd.docker.image.rootfs.diff.tar':
    case 'application/vnd.oci.image.layer.nondistributable.v1.tar':
      return 'none';
    default:
      throw new BerthError('MANIFEST_INVALID', `layer media type ${mediaType} is not supported`, {
        hint: 'berth applies tar layers compressed with gzip or zstd, or uncompressed',
      });
  }
}

export function parseImageConfig(bytes: Buffer, what = 'image config'): ImageConfig {
  const o = parseJson(bytes, what, MAX_CONFIG_BYTES);
  const rootfs = o['rootfs'];
  if (!isObject(rootfs) || rootfs['type'] !== 'layers' || !Array.isArray(rootfs['diff_ids'])) throw bad(what, '"rootfs" must have type "layers" and diff_ids');
  if (rootfs['diff_ids'].length > MAX_LAYERS) throw bad(what, `it lists ${rootfs['diff_ids'].length} diff_ids, the limit is ${MAX_LAYERS}`);
  const diffIds = rootfs['diff_ids'].map((d) => {
    if (typeof d !== 'string') throw bad(what, 'a diff_id is not a string');
    return parseDigest(d, `${what} diff_id`);
  });
  const c = isObject(o['config']) ? o['config'] : {};
  const config: ImageConfig['config'] = {};
  const user = optStr(c, 'User', what);
  if (user) config.User = user;
  const env = optStrArray(c, 'Env', what);
  if (env) config.Env = env;
  const entrypoint = optStrArray(c, 'Entrypoint', what);
  if (entrypoint) config.Entrypoint = entrypoint;
  const cmd = optStrArray(c, 'Cmd', what);
  if (cmd) config.Cmd = cmd;
  const wd = optStr(c, 'WorkingDir', what);
  if (wd) config.WorkingDir = wd;
  const labels = optStrMap(c, 'Labels', what);
  if (labels) config.Labels = labels;
  if (isObject(c['ExposedPorts'])) config.ExposedPorts = c['ExposedPorts'];
  const stop = optStr(c, 'StopSignal', what);
  if (stop) config.StopSignal = stop;
  return { architecture: str(o, 'architecture', what), os: str(o, 'os', what), config, rootfs: { type: 'layers', diff_ids: diffIds } };
}

/** The host platform in OCI terms. */
export function hostPlatform(): Platform {
  const arch: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };
  return { os: 'linux', architecture: arch[process.arch] ?? process.arch };
}

export function formatPlatform(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
}

/** Pick the manifest for `want` from an index, or fail listing what is there. */
export function selectPlatform(index: ImageIndex, want: Platform, what: string): Descriptor {
  const candidates = index.manifests.filter((m) => m.mediaType === MediaType.ociManifest || m.mediaType === MediaType.dockerManifest);
  const match = candidates.find(
    (m) => m.platform && m.platform.os === want.os && m.platform.architecture === want.architecture && (!want.variant || m.platform.variant === want.variant),
  );
  if (match) return match;
  const nested = index.manifests.find((m) => m.mediaType === MediaType.ociIndex || m.mediaType === MediaType.dockerManifestList);
  if (nested !== undefined && candidates.length === 0) {
    throw new BerthError('MANIFEST_INVALID', `${what}: its index lists another index (${nested.digest}) and no image`, {
      hint: 'berth follows one level of index only (as registries serve multi-platform images); point to the inner index or an image directly',
    });
  }
  const available = candidates.map((m) => (m.platform ? formatPlatform(m.platform) : 'unknown')).join(', ') || 'none';
  throw new BerthError('IMAGE_NOT_FOUND', `${what} has no image for ${formatPlatform(want)} (available: ${available})`, {
    hint: 'use an image built for this host, or choose one of the listed platforms',
  });
}

/** "os/arch[/variant]" from the command line. */
export function parsePlatform(value: string): Platform {
  const m = /^([a-z0-9]+)\/([a-z0-9_]+)(?:\/([a-z0-9]+))?$/.exec(value);
  if (!m) throw new BerthError('USAGE', `invalid platform ${JSON.stringify(value)}`, { hint: 'use OS/ARCH[/VARIANT], e.g. linux/arm64/v8' });
  return { os: m[1]!, architecture: m[2]!, ...(m[3] ? { variant: m[3] } : {}) };
}

/** "os/arch[/variant]" (or a Platform already) as a Platform. */
export function parsePlatformOption(value: string | Platform): Platform {
  if (typeof value !== 'string') return value;
  const m = /^([a-z0-9]+)\/([a-z0-9_]+)(?:\/([a-z0-9]+))?$/.exec(value);
  if (!m) throw new BerthError('USAGE', `invalid platform ${JSON.stringify(value)}`, { hint: 'use OS/ARCH[/VARIANT], e.g. linux/arm64/v8' });
  return { os: m[1]!, architecture: m[2]!, ...(m[3] ? { variant: m[3] } : {}) };
}
