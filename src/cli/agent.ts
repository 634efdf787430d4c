import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { imageSourceOptions, pullOptions, run, type GlobalArgs, type ImageSourceArgs } from './common.ts';

type AgentArgs = GlobalArgs & ImageSourceArgs;

export const agentCommand: CommandModule<GlobalArgs, AgentArgs> = {
  command: 'agent',
  describe: 'Serve berth on the system bus (org.berth.Manager1)',
  builder: (y: Argv<GlobalArgs>) => imageSourceOptions(y) as Argv<AgentArgs>,
  handler: (args: ArgumentsCamelCase<AgentArgs>) =>
    run(args, async (ctx) => {
      const { runAgent } = await import('../agent/service.ts');
      await runAgent(ctx, { pull: await pullOptions(args, ctx.report.warn) });
    }, { changes: true }),
};
