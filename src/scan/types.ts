/**
 * Scanning an exploded image: what `berth scan` and the publisher share.
 * The inventory is read from the rootfs's package databases (never by running
 * anything from the image), matched against an offline OSV advisory
 * directory, plus optional external scanner hooks; a policy turns findings
 * into a verdict. Every byte of the rootfs and of hook output is untrusted.
 */

export type Severity = 'unknown' | 'low' | 'medium' | 'high' | 'critical';

/** One installed OS package. */
export interface InstalledPackage {
  /** OSV ecosystem: 'Debian', 'Alpine', 'Red Hat' ... (with the release when known, e.g. 'Debian:12') */
  ecosystem: string;
  name: string;
  version: string;
  /** the source package, when the database names one (dpkg's Source:, apk's o:) */
  source?: string;
  /** the source package's version when it differs from `version` (dpkg's "Source: NAME (VERSION)") */
  sourceVersion?: string;
  /** package URL (purl) */
  purl: string;
}

export interface Finding {
  /** the advisory's OSV id (or a hook's id) */
  id: string;
  aliases: string[];
  package: string;
  installed: string;
  /** the first fixed version, when the advisory gives one */
  fixed?: string;
  severity: Severity;
  summary?: string;
  /** 'osv' or 'hook:NAME' */
  source: string;
  /** true when the policy's allow-list names this id (or an alias); it then never blocks */
  allowed: boolean;
}

export interface ScanPolicy {
  /** findings at or above this severity block; undefined: nothing blocks */
  blockAt?: Severity;
  /** advisory ids (or aliases) that never block */
  allow: readonly string[];
  /** a directory of OSV JSON files; undefined: no advisory matching */
  osvDir?: string;
  /** external scanner commands, each given the rootfs path (contract in docs) */
  hooks: readonly string[];
  /** block when the rootfs has a package database berth does not read (rpm); default false */
  blockUnscanned?: boolean;
  /** each hook's time limit; default 300 000 (5 minutes) */
  hookTimeoutMs?: number;
}

export interface ScanReport {
  /** the manifest digest, when scanning a stored image */
  digest?: string;
  packages: InstalledPackage[];
  findings: Finding[];
  verdict: 'approve' | 'block';
  /** one line each: why blocked (or "no finding at or above high") */
  reasons: string[];
  /** package databases found but not read, e.g. "rpm (/var/lib/rpm/rpmdb.sqlite)" */
  unscanned?: string[];
  /** CycloneDX 1.5 JSON SBOM of the packages */
  sbom: Record<string, unknown>;
}
