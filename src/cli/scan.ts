import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import type { ScanResult } from '../ops/scan.ts';
import { run, type GlobalArgs } from './common.ts';

interface ScanArgs extends GlobalArgs {
  image: string | undefined;
  rootfs: string | undefined;
  osv: string | undefined;
  'block-at': 'unknown' | 'low' | 'medium' | 'high' | 'critical' | undefined;
  allow: string[];
  hook: string[];
  'hook-timeout': number | undefined;
  'block-unscanned': boolean;
  sbom: string | undefined;
  json: boolean;
}

const list = { type: 'string', array: true, default: [] as string[] } as const;

export const scanCommand: CommandModule<GlobalArgs, ScanArgs> = {
  command: 'scan [image]',
  describe: 'Scan an image: package inventory (SBOM), advisories, scanner hooks, policy verdict',
  builder: (y: Argv<GlobalArgs>) =>
    y
      .positional('image', { type: 'string', describe: 'a stored image: reference, or image ID (a digest or its first 3+ hex digits)' })
      .option('rootfs', { type: 'string', describe: 'scan this directory (an unpacked image) instead of a stored image' })
      .option('osv', { type: 'string', describe: 'the advisory database: DIR of OSV JSON files', defaultDescription: 'none (no advisory matching)' })
      .option('block-at', { choices: ['unknown', 'low', 'medium', 'high', 'critical'] as const, describe: 'block on findings of this severity or higher', defaultDescription: 'nothing blocks' })
      .option('allow', { ...list, describe: 'never block on ADVISORY (an ID or an alias)' })
      .option('hook', { ...list, describe: 'a scanner, run as CMD ROOTFS (contract in docs/scanning.md)' })
      .option('hook-timeout', { type: 'number', describe: 'seconds each hook may run', defaultDescription: '300' })
      .option('block-unscanned', { type: 'boolean', default: false, describe: 'block when the image has a package database berth does not read (rpm)' })
      .option('sbom', { type: 'string', describe: 'write FILE: the SBOM, CycloneDX 1.5 JSON' })
      .option('json', { type: 'boolean', default: false, describe: 'print the report (packages, findings, verdict, SBOM) as JSON' })
      .check((a) => {
        if ((a.image === undefined) === (a.rootfs === undefined)) throw new Error('name an IMAGE or give --rootfs DIR (one of them)');
        if (a['block-at'] !== undefined && a.osv === undefined && a.hook.length === 0) throw new Error('--block-at needs something to find with: --osv DIR or --hook CMD');
        const t = a['hook-timeout'];
        if (t !== undefined && !(Number.isFinite(t) && t > 0)) throw new Error('--hook-timeout: expected a positive number of seconds');
        return true;
      })
      .example('$0 scan --osv /var/lib/osv --block-at high docker://registry.example.com/etcd:3.4', 'exit status 10 if a high or critical advisory hits a package of the stored image')
      .example('$0 scan --rootfs /mnt/image --sbom sbom.json', 'list the packages of an unpacked image as a CycloneDX SBOM')
      .example('$0 scan --osv /var/lib/osv --block-at medium --allow CVE-2024-0001 --hook /usr/libexec/my-scanner etcd', 'a second scanner, and one advisory that does not apply') as Argv<ScanArgs>,
  handler: (args: ArgumentsCamelCase<ScanArgs>) =>
    run(args, async (ctx) => {
      const { scan, writeSbom, blockedError } = await import('../ops/scan.ts');
      const policy = {
        ...(args['block-at'] === undefined ? {} : { blockAt: args['block-at'] }),
        allow: args.allow,
        ...(args.osv === undefined ? {} : { osvDir: args.osv }),
        hooks: args.hook,
        blockUnscanned: args['block-unscanned'],
        ...(args['hook-timeout'] === undefined ? {} : { hookTimeoutMs: args['hook-timeout'] * 1000 }),
      };
      const r = await scan(ctx, args.rootfs !== undefined ? { rootfs: args.rootfs } : { image: args.image! }, policy);
      if (args.sbom !== undefined) await writeSbom(r, args.sbom);
      const blocked = r.verdict === 'block' ? blockedError(r) : undefined;
      if (args.json) {
        (await import('./output.ts')).printJson(r);
        if (blocked) process.exitCode = blocked.exitCode;
        return;
      }
      const { SEVERITIES } = await import('../scan/index.ts');
      process.stdout.write(formatReport(r, (await import('./output.ts')).table, SEVERITIES));
      // The verdict's one line and exit status, as every error: berth: error: ... (hint).
      if (blocked) throw blocked;
    }, { reads: true }),
};

/** Advisory text is untrusted: no control characters reach the terminal. */
const clean = (s: string): string => s.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');

function formatReport(r: ScanResult, table: (headers: string[], rows: string[][]) => string, severities: readonly string[]): string {
  const out: string[] = [];
  out.push(`${clean(r.target)}${r.digest === undefined ? '' : ` (${r.digest})`}: ${r.packages.length} packages`);
  for (const u of r.unscanned ?? []) out.push(`not scanned: ${clean(u)}`);
  if (r.findings.length > 0) {
    const rows = [...r.findings]
      .sort((a, b) => severities.indexOf(b.severity) - severities.indexOf(a.severity) || a.id.localeCompare(b.id) || a.package.localeCompare(b.package))
      .map((f) => [f.severity.toUpperCase(), clean(f.id), clean(f.package), clean(f.installed), clean(f.fixed ?? '-'), f.allowed ? 'allowed' : '', clean((f.summary ?? '').slice(0, 80))]);
    out.push('', table(['SEVERITY', 'ID', 'PACKAGE', 'INSTALLED', 'FIXED', 'POLICY', 'SUMMARY'], rows).trimEnd());
  } else {
    out.push('no findings');
  }
  out.push('', `verdict: ${r.verdict}`, ...r.reasons.map((x) => `  ${clean(x)}`));
  return `${out.join('\n')}\n`;
}
