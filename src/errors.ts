/**
 * berth's one error type. Every failure a user can cause or meet carries a
 * stable `code` (for scripts and --json), a one-line message naming the thing,
 * a hint naming the fix, and the process exit status it maps to.
 */

/** Exit statuses; documented in README.md ("Exit codes"). Stable across releases. */
export const ExitCode = {
  ok: 0,
  failure: 1, // unexpected internal failure
  usage: 2, // bad command line
  notFound: 3, // image, tag or container does not exist
  unreachable: 4, // registry or other remote down / unreachable
  integrity: 5, // digest mismatch, malformed or hostile image data
  conflict: 6, // name already installed, lock held
  startFailed: 7, // systemd could not start (or stop) the unit
  untrusted: 8, // rejected by the trust policy
  host: 9, // host not ready: not root, missing runtime, no system bus
  blocked: 10, // the scan policy blocks the image, or the scan could not be completed (it fails closed)
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export type ErrorCode =
  | 'USAGE'
  | 'INVALID_REFERENCE'
  | 'INVALID_NAME'
  | 'IMAGE_NOT_FOUND'
  | 'NOT_INSTALLED'
  | 'REGISTRY_UNREACHABLE'
  | 'REGISTRY_ERROR'
  | 'REGISTRY_BLOCKED'
  | 'DIGEST_MISMATCH'
  | 'MANIFEST_INVALID'
  | 'LAYER_INVALID'
  | 'STORE_CORRUPT'
  | 'DEPLOYMENT_INCONSISTENT'
  | 'UNSAFE_PATH'
  | 'ALREADY_INSTALLED'
  | 'IMAGE_IN_USE'
  | 'AMBIGUOUS'
  | 'LOCKED'
  | 'CONFLICT_BUS_NAME'
  | 'START_FAILED'
  | 'UPDATE_FAILED'
  | 'STOP_FAILED'
  | 'SYSTEMD_ERROR'
  | 'NO_RUNTIME'
  | 'MISSING_TOOL'
  | 'NOT_ROOT'
  | 'NO_SYSTEM_BUS'
  | 'UNTRUSTED'
  | 'POLICY_INVALID'
  | 'NO_POLICY'
  | 'KEY_INVALID'
  | 'KEY_PASSWORD'
  | 'CONFIG_INVALID'
  | 'SHARE_UNAVAILABLE'
  | 'SCAN_BLOCKED'
  | 'SCAN_FAILED'
  | 'IO_ERROR'
  | 'INTERNAL';

const exitFor: Record<ErrorCode, ExitCode> = {
  USAGE: ExitCode.usage,
  INVALID_REFERENCE: ExitCode.usage,
  INVALID_NAME: ExitCode.usage,
  IMAGE_NOT_FOUND: ExitCode.notFound,
  NOT_INSTALLED: ExitCode.notFound,
  REGISTRY_UNREACHABLE: ExitCode.unreachable,
  REGISTRY_ERROR: ExitCode.unreachable,
  REGISTRY_BLOCKED: ExitCode.untrusted, // refused by the host's policy (registries.conf), like the trust policy
  DIGEST_MISMATCH: ExitCode.integrity,
  MANIFEST_INVALID: ExitCode.integrity,
  LAYER_INVALID: ExitCode.integrity,
  STORE_CORRUPT: ExitCode.integrity,
  DEPLOYMENT_INCONSISTENT: ExitCode.integrity,
  UNSAFE_PATH: ExitCode.integrity,
  ALREADY_INSTALLED: ExitCode.conflict,
  IMAGE_IN_USE: ExitCode.conflict,
  AMBIGUOUS: ExitCode.conflict, // a short image ID that more than one image starts with
  LOCKED: ExitCode.conflict,
  CONFLICT_BUS_NAME: ExitCode.conflict,
  START_FAILED: ExitCode.startFailed,
  UPDATE_FAILED: ExitCode.startFailed,
  STOP_FAILED: ExitCode.startFailed,
  SYSTEMD_ERROR: ExitCode.startFailed,
  NO_RUNTIME: ExitCode.host,
  MISSING_TOOL: ExitCode.host, // a host program berth runs (flock, setfattr) is not installed
  NOT_ROOT: ExitCode.host,
  NO_SYSTEM_BUS: ExitCode.host,
  UNTRUSTED: ExitCode.untrusted,
  POLICY_INVALID: ExitCode.untrusted, // fails closed: nothing is accepted under a broken policy
  NO_POLICY: ExitCode.untrusted,
  KEY_INVALID: ExitCode.usage,
  KEY_PASSWORD: ExitCode.usage, // the password does not open the key (its own code, so scripts can ask again)
  CONFIG_INVALID: ExitCode.usage,
  SHARE_UNAVAILABLE: ExitCode.unreachable, // the shared store is missing, hung or lacks the image, and shared-store-fallback=refuse
  SCAN_BLOCKED: ExitCode.blocked,
  SCAN_FAILED: ExitCode.blocked, // a broken advisory database, a failed hook or an unreadable package database never approves
  IO_ERROR: ExitCode.failure,
  INTERNAL: ExitCode.failure,
};

export interface BerthErrorOptions {
  /** What to do about it; shown after the message. */
  hint?: string;
  /** Extra lines shown below (e.g. the journal's tail). */
  details?: readonly string[];
  cause?: unknown;
}

export class BerthError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  readonly details: readonly string[];

  constructor(code: ErrorCode, message: string, options: BerthErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'BerthError';
    this.code = code;
    this.hint = options.hint;
    this.details = options.details ?? [];
  }

  get exitCode(): ExitCode {
    return exitFor[this.code];
  }

  toJSON(): { code: ErrorCode; message: string; hint?: string; details?: readonly string[] } {
    return {
      code: this.code,
      message: this.message,
      ...(this.hint === undefined ? {} : { hint: this.hint }),
      ...(this.details.length === 0 ? {} : { details: this.details }),
    };
  }
}

export function isBerthError(e: unknown): e is BerthError {
  return e instanceof BerthError;
}

/** The errno code of a Node system error, if it is one. */
export function errnoCode(e: unknown): string | undefined {
  if (typeof e === 'object' && e !== null && 'code' in e) {
    const code = (e as { code: unknown }).code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}
