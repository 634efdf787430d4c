import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { run, type GlobalArgs } from './common.ts';

interface InspectArgs extends GlobalArgs {
  image: string;
  json: boolean;
}

export const inspectCommand: CommandModule<GlobalArgs, InspectArgs> = {
  command: 'inspect <image>',
  describe: 'Show a stored image: layers, config, signatures',
  builder: (y: Argv<GlobalArgs>) =>
    y
      .positional('image', { type: 'string', demandOption: true, describe: 'reference, or image ID (a digest or its first 3+ hex digits)' })
      .option('json', { type: 'boolean', default: false, describe: 'print as JSON' }) as Argv<InspectArgs>,
  handler: (args: ArgumentsCamelCase<InspectArgs>) =>
    run(args, async (ctx) => {
      const { inspect } = await import('../ops/images.ts');
      const { printJson } = await import('./output.ts');
      const d = await inspect(ctx, args.image);
      if (args.json) return printJson(d);
      const c = d.config.config;
      const lines = [
        `Digest:     ${d.digest}`,
        `References: ${d.references.join(', ') || '<none>'}`,
        `Platform:   ${d.platform}`,
        `Created:    ${d.created ?? '-'}`,
        `Pulled:     ${d.pulled}`,
        `Signatures: ${d.signatures}`,
        `Sigstore:   ${d.sigstoreSignatures}${d.sigstore.length === 0 ? '' : ` (${d.sigstore.map((s) => (s.kind === 'bundle' ? 'bundle' : `cosign ${s.keyless ? 'keyless' : 'key'}${s.rekor ? ' +rekor' : ''}`)).join(', ')})`}`,
        `Used by:    ${d.usedBy.join(', ') || '-'}`,
        `Command:    ${JSON.stringify([...(c.Entrypoint ?? []), ...(c.Cmd ?? [])])}`,
        `Env:        ${(c.Env ?? []).join(' ')}`,
        `WorkingDir: ${c.WorkingDir ?? '/'}`,
        `User:       ${c.User ?? 'root'}`,
        'Labels:',
        ...Object.entries(c.Labels ?? {}).map(([k, v]) => `  ${k}=${v}`),
        'Layers:',
        ...d.layerDigests.map((l) => `  ${l.digest}  ${l.size}  ${l.mediaType}`),
      ];
      process.stdout.write(`${lines.join('\n')}\n`);
    }, { reads: true }),
};
