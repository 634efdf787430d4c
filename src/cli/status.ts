import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { run, type GlobalArgs } from './common.ts';

interface StatusArgs extends GlobalArgs {
  name: string;
  json: boolean;
}

export const statusCommand: CommandModule<GlobalArgs, StatusArgs> = {
  command: 'status <name>',
  describe: 'Show a container: unit, both slots, values, journal',
  builder: (y: Argv<GlobalArgs>) =>
    y
      .positional('name', { type: 'string', demandOption: true, describe: 'container name' })
      .option('json', { type: 'boolean', default: false, describe: 'print as JSON' }) as Argv<StatusArgs>,
  handler: (args: ArgumentsCamelCase<StatusArgs>) =>
    run(args, async (ctx) => {
      const { status } = await import('../ops/status.ts');
      const s = await status(ctx, args.name);
      if (args.json) return (await import('./output.ts')).printJson(s);
      const lines = [`${s.name}: ${s.unit ? `${s.unit.activeState}/${s.unit.subState}, ${s.unit.unitFileState}${s.unit.since ? `, since ${s.unit.since}` : ''}` : 'systemd state unknown'}`];
      if (s.runtime) {
        const how = s.runtime.name === 'systemd' ? 'no OCI runtime: systemd runs the process in RootDirectory=' : 'OCI runtime';
        lines.push(`runtime: ${s.runtime.name} (${how}; ${s.runtime.from === 'label' ? "the image's label berth.runtime" : s.runtime.from === 'option' ? 'chosen at install or update' : 'default'})`);
        for (const n of s.runtime.notes) lines.push(`  note: ${n}`);
      }
      for (const { slot, active, info } of s.slots) {
        lines.push(`${active ? '*' : ' '} slot ${slot}: ${info.image} ${info.manifestDigest} (deployed ${info.created}, runtime ${info.runtimeName})`);
        const set = Object.entries(info.set);
        if (set.length) lines.push(`    set: ${set.map(([k, v]) => `${k}=${v}`).join(' ')}`);
        if (info.source?.kind === 'share') lines.push(`    from shared store ${info.source.share} (${info.source.rootfs}, read-only)`);
        for (const f of info.hostFiles.files) lines.push(`    host file: ${f.path}`);
      }
      if (s.share?.holds === false) lines.push(`warning: shared store ${s.share.share} no longer holds ${s.share.rootfs}: the container cannot start again until it is updated (berth update ${s.name})`);
      if (s.share !== undefined && s.share.holds === undefined) lines.push(`warning: shared store ${s.share.share} did not answer: ${s.share.reason ?? 'unknown'}`);
      if (s.journal.length) lines.push('journal:', ...s.journal.map((l) => `  ${l}`));
      process.stdout.write(`${lines.join('\n')}\n`);
    }, { reads: true }),
};
