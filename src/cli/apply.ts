import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { imageSourceOptions, pullOptions, run, type GlobalArgs, type ImageSourceArgs } from './common.ts';

interface ApplyArgs extends GlobalArgs, ImageSourceArgs {
  file: string;
  prune: boolean;
  'dry-run': boolean;
  settle: number | undefined;
  pull: 'always' | 'missing' | 'never';
  json: boolean;
}

export const applyCommand: CommandModule<GlobalArgs, ApplyArgs> = {
  command: 'apply <file>',
  describe: 'Make the host match a plan of system containers',
  builder: (y: Argv<GlobalArgs>) =>
    imageSourceOptions(y)
      .positional('file', { type: 'string', demandOption: true, describe: 'the plan (YAML, docs/plan.md); - reads standard input' })
      .option('prune', { type: 'boolean', default: false, describe: 'uninstall berth containers the plan does not name' })
      .option('dry-run', { type: 'boolean', default: false, describe: 'pull and print what would be done; change no container' })
      .option('settle', { type: 'number', describe: 'seconds an updated container must stay active', defaultDescription: '5' })
      .option('pull', { choices: ['always', 'missing', 'never'] as const, default: 'missing' as const, describe: 'ask the registry always, only for images the store lacks (works offline after berth load), or never' })
      .option('json', { type: 'boolean', default: false, describe: 'print the actions as JSON' })
      .example('$0 apply /etc/berth/plan.yaml', 'install, update or leave alone each container of the plan')
      .example('$0 apply --prune --dry-run plan.yaml', 'show what would change, including removals') as Argv<ApplyArgs>,
  handler: (args: ArgumentsCamelCase<ApplyArgs>) =>
    run(args, async (ctx) => {
      const { applyPlanFile } = await import('../ops/apply.ts');
      const result = await applyPlanFile(ctx, args.file, {
        pull: await pullOptions(args, ctx.report.warn),
        prune: args.prune,
        dryRun: args['dry-run'],
        pullPolicy: args.pull,
        ...(args.settle === undefined ? {} : { settleMs: args.settle * 1000 }),
      });
      const { printJson, reportError } = await import('./output.ts');
      if (args.json) {
        printJson({ actions: result.actions, ...(result.error ? { error: result.error.toJSON() } : {}) });
      } else {
        const verb = result.dryRun ? 'would ' : '';
        const quiet = !result.changed && !result.error;
        for (const a of result.actions) {
          // A host that matches says only that; otherwise every entry and its final state.
          if (a.action === 'none' && (quiet || result.dryRun)) continue;
          const state = a.state ? ` [${a.state.activeState}/${a.state.subState}]` : '';
          let what: string;
          if (a.action === 'failed') what = `failed ${a.reason ?? ''}: ${a.error ?? ''}`;
          else if (a.result !== undefined) what = `${a.result}${a.reason ? ` (${a.reason})` : ''}${a.error ? `: ${a.error}` : ''}`;
          else what = `${a.action === 'skipped' ? '' : verb}${a.action}${a.reason ? ` (${a.reason})` : ''}`;
          process.stdout.write(`${a.name}: ${what}${state}\n`);
        }
        if (!result.changed && !result.error) process.stdout.write('nothing to do: the host matches the plan\n');
      }
      // One JSON document on stdout: the error is part of it, not a second one.
      if (result.error) process.exitCode = reportError(result.error, false);
    }, { changes: true }),
};
