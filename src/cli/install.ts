import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { run, type GlobalArgs } from './common.ts';

interface InstallArgs extends GlobalArgs {
  image: string;
  system: boolean;
  name: string | undefined;
  'tls-verify': boolean;
  runtime: string | undefined;
  json: boolean;
}

export const installCommand: CommandModule<GlobalArgs, InstallArgs> = {
  command: 'install <image>',
  describe: 'Install IMAGE as a system container under systemd and start it',
  builder: (y: Argv<GlobalArgs>) =>
    y
      .positional('image', { type: 'string', demandOption: true, describe: 'docker://HOST[:PORT]/REPO[:TAG|@DIGEST] or oci:DIR[:TAG]' })
      .option('system', { type: 'boolean', default: true, describe: 'install as a system container (the only kind; accepted for atomic compatibility)' })
      .option('name', { type: 'string', describe: 'container and unit name', defaultDescription: 'the repository name, plus -TAG unless latest' })
      .option('tls-verify', { type: 'boolean', default: true, describe: 'require HTTPS and verified certificates (--tls-verify=false for a local plain-HTTP registry)' })
      .option('runtime', { type: 'string', describe: 'OCI runtime: runc, crun or a path', defaultDescription: 'runc' })
      .option('json', { type: 'boolean', default: false, describe: 'print the result as JSON' })
      .example('$0 install --system docker://registry.example.com/etcd:3.4', 'install and start etcd.service')
      .example('$0 install --name web oci:/media/images:web', 'install from an OCI layout (offline)') as Argv<InstallArgs>,
  handler: (args: ArgumentsCamelCase<InstallArgs>) =>
    run(args, async (ctx) => {
      const { install } = await import('../ops/install.ts');
      const result = await install(ctx, { image: args.image, name: args.name, tlsVerify: args['tls-verify'], runtime: args.runtime });
      if (args.json) (await import('./output.ts')).printJson(result);
      else process.stdout.write(`${result.name}: installed ${result.image} and started ${result.unit}\n`);
    }),
};
