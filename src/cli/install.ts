import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { imageSourceOptions, pullOptions, run, type GlobalArgs, type ImageSourceArgs } from './common.ts';

interface InstallArgs extends GlobalArgs, ImageSourceArgs {
  image: string;
  system: boolean;
  name: string | undefined;
  set: string[];
  runtime: string | undefined;
  after: string[];
  before: string[];
  requires: string[];
  wants: string[];
  'required-by': string[];
  'wanted-by': string[];
  start: boolean;
  'dry-run': boolean;
  pull: 'always' | 'missing' | 'never';
  'health-cmd': string | undefined;
  'ready-cmd': string | undefined;
  'ready-http': string | undefined;
  'ready-tcp': string | undefined;
  'ready-timeout': number | undefined;
  'auto-update': boolean;
  json: boolean;
}

const list = { type: 'string', array: true, default: [] as string[] } as const;

export const installCommand: CommandModule<GlobalArgs, InstallArgs> = {
  command: 'install <image>',
  describe: 'Install an image as a system container and start it',
  builder: (y: Argv<GlobalArgs>) =>
    imageSourceOptions(y)
      .positional('image', { type: 'string', demandOption: true, describe: 'docker://HOST[:PORT]/REPO[:TAG|@DIGEST], a short name, oci:DIR[:TAG], oci-archive:FILE[:TAG] or docker-archive:FILE[:REF]' })
      .option('system', { type: 'boolean', default: true, describe: 'install as a system container (the only kind; accepted for atomic compatibility)' })
      .option('name', { type: 'string', describe: 'container and unit name', defaultDescription: 'the repository name, plus -TAG unless latest' })
      .option('set', { ...list, describe: 'template value KEY=VALUE (repeatable; recorded and reused by updates)' })
      .option('runtime', { type: 'string', describe: 'OCI runtime: runc, crun or a path; or systemd: no OCI runtime, systemd runs the image\'s process itself (RootDirectory=)', defaultDescription: 'the image\'s label berth.runtime, else runc' })
      .option('after', { ...list, describe: 'order after UNIT (a berth container name means its .service)' })
      .option('before', { ...list, describe: 'order before UNIT' })
      .option('requires', { ...list, describe: 'require UNIT' })
      .option('wants', { ...list, describe: 'want UNIT' })
      .option('required-by', { ...list, describe: 'be required by UNIT (in [Install])' })
      .option('wanted-by', { ...list, describe: 'be wanted by UNIT (in [Install])' })
      .option('start', { type: 'boolean', default: true, describe: 'start the unit (--no-start only enables it)' })
      .option('dry-run', { type: 'boolean', default: false, describe: 'print the rendered config.json, unit and tmpfiles; change nothing' })
      .option('pull', { choices: ['always', 'missing', 'never'] as const, default: 'missing' as const, describe: 'when to pull a registry image: always, when the store lacks it, or never' })
      .option('health-cmd', { type: 'string', describe: 'command run in the container (sh -c) to prove an update healthy' })
      .option('ready-cmd', { type: 'string', describe: 'readiness: a command run in the container (sh -c) until it exits 0; the unit is active only then' })
      .option('ready-http', { type: 'string', describe: 'readiness: a URL that must answer 2xx/3xx before the unit is active' })
      .option('ready-tcp', { type: 'string', describe: 'readiness: HOST:PORT that must accept connections before the unit is active' })
      .option('ready-timeout', { type: 'number', describe: 'seconds the readiness probe may take', defaultDescription: '60' })
      .option('auto-update', { type: 'boolean', default: false, describe: 'let the auto-update timer (berth update --all --auto) update it' })
      .option('json', { type: 'boolean', default: false, describe: 'print the result as JSON' })
      .example('$0 install --system docker://registry.example.com/etcd:3.4', 'install and start etcd-3.4.service')
      .example('$0 install --ready-tcp 127.0.0.1:2379 docker://registry.example.com/etcd:3.4', 'etcd-3.4.service is active (and units after it start) once etcd accepts connections')
      .example('$0 install --name flannel --after etcd --required-by docker oci:/media/images:flannel', 'order flannel between etcd and docker') as Argv<InstallArgs>,
  handler: (args: ArgumentsCamelCase<InstallArgs>) =>
    run(args, async (ctx) => {
      const { install } = await import('../ops/install.ts');
      const { parseSetOptions } = await import('../render/values.ts');
      const { checkReadiness } = await import('../runtime/readiness.ts');
      const ready = checkReadiness({ cmd: args['ready-cmd'], http: args['ready-http'], tcp: args['ready-tcp'], timeoutSec: args['ready-timeout'] }, '--ready-*');
      const ordering = { after: args.after, before: args.before, requires: args.requires, wants: args.wants, requiredBy: args['required-by'], wantedBy: args['wanted-by'] };
      await (await import('./check-ordering.ts')).checkOrderingNames(ctx, ordering, args.name);
      const result = await install(ctx, {
        image: args.image,
        ...(args.name === undefined ? {} : { name: args.name }),
        set: parseSetOptions(args.set),
        ordering,
        ...(args.runtime === undefined ? {} : { runtime: args.runtime }),
        pull: await pullOptions(args, ctx.report.warn),
        pullPolicy: args.pull,
        noStart: !args.start,
        dryRun: args['dry-run'],
        ...(args['health-cmd'] === undefined ? {} : { healthCmd: ['/bin/sh', '-c', args['health-cmd']] }),
        ...(ready === undefined ? {} : { ready }),
        autoUpdate: args['auto-update'],
      });
      if (args.json) return (await import('./output.ts')).printJson(result);
      if (result.rendered) {
        const r = result.rendered;
        process.stdout.write(`# config.json\n${r.configJson}\n# ${result.unit ?? '(no unit)'}\n${r.unit ?? ''}\n# tmpfiles.d/${result.name}.conf\n${r.tmpfiles ?? '(none)\n'}`);
        return;
      }
      const what = result.unit === undefined ? 'installed (no service)' : result.activeState === 'active' ? `started ${result.unit}` : `enabled ${result.unit} (not started)`;
      process.stdout.write(`${result.name}: installed ${result.image} and ${what}\n`);
    }, { changes: true }),
};
