#!/usr/bin/env node
// berth's manual: berth(8) and one page per command (berth-install(8), ...),
// in man(7) troff, from one source of truth: the yargs command definitions
// (src/cli/commands.ts: synopsis, options, types, defaults, choices, the
// commands' own examples and subcommands) and the prose table in
// man-prose.mjs (description, more examples, files).
// Usage: node packaging/gen-man.mjs --out DIR [BERTH_JS]
//   BERTH_JS: the bin/berth.js of the tree to document (its dist/cli/commands.js,
//   else src/cli/commands.ts through tsx); default: this checkout's.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { environment, defaultFiles, pages, seeAlso } from './man-prose.mjs';

const args = process.argv.slice(2);
const outAt = args.indexOf('--out');
if (outAt < 0 || !args[outAt + 1]) {
  process.stderr.write('usage: gen-man.mjs --out DIR [BERTH_JS]\n');
  process.exit(2);
}
const outDir = args[outAt + 1];
const berthJs = path.resolve(args.filter((_, i) => i !== outAt && i !== outAt + 1)[0] ?? fileURLToPath(new URL('../bin/berth.js', import.meta.url)));
const tree = path.dirname(path.dirname(berthJs));

async function loadCommands() {
  const compiled = path.join(tree, 'dist/cli/commands.js');
  if (existsSync(compiled)) return import(pathToFileURL(compiled).href);
  const { register } = await import('tsx/esm/api');
  register();
  return import(pathToFileURL(path.join(tree, 'src/cli/commands.ts')).href);
}
const cli = await loadCommands();
const { version } = JSON.parse(readFileSync(path.join(tree, 'package.json'), 'utf8'));
const date = new Date(Number(process.env.SOURCE_DATE_EPOCH ?? 0) * 1000 || Date.UTC(2026, 0, 1)).toISOString().slice(0, 10);

/**
 * What a yargs builder declares, recorded: it is called with a stand-in for
 * yargs that notes option(), positional(), example() and command() and
 * ignores everything else (parserConfiguration, demandCommand, check...).
 */
function record(builder) {
  const rec = { options: [], positionals: [], examples: [], commands: [] };
  const proxy = new Proxy(
    {},
    {
      get(_, prop) {
        if (prop === 'option' || prop === 'options')
          return (name, opts) => {
            if (typeof name === 'object') for (const [k, v] of Object.entries(name)) rec.options.push({ name: k, ...v });
            else rec.options.push({ name, ...opts });
            return proxy;
          };
        if (prop === 'positional') return (name, opts) => (rec.positionals.push({ name, ...opts }), proxy);
        if (prop === 'example') return (cmd, desc) => (rec.examples.push([cmd, desc]), proxy);
        if (prop === 'command') return (m) => ([m].flat().forEach((c) => rec.commands.push(c)), proxy);
        if (prop === 'then') return undefined;
        return () => proxy;
      },
    },
  );
  if (typeof builder === 'function') builder(proxy);
  else if (builder && typeof builder === 'object') for (const [k, v] of Object.entries(builder)) rec.options.push({ name: k, ...v });
  return rec;
}

// --- troff -----------------------------------------------------------------

/** Text for troff: backslashes and dashes escaped, `code` bold, *word* italic, no line starting with . or '. */
const esc = (s) =>
  String(s)
    .replace(/\\/g, '\\e')
    .replace(/-/g, '\\-')
    .replace(/`([^`]+)`/g, '\\fB$1\\fR')
    .replace(/\*([A-Za-z][\w-]*)\*/g, '\\fI$1\\fR')
    .replace(/^([.'])/gm, '\\&$1');
/** A paragraph of running text, one sentence per source line (man(7) style). */
const para = (s) => esc(s).replace(/([.;:]) (?=[A-Z(])/g, '$1\n');
/** "containers-policy.json(5)" -> .BR containers-policy.json (5) */
const ref = (r) => {
  const m = /^(.*)\((\w+)\)$/.exec(r);
  return m ? `.BR ${esc(m[1])} (${m[2]})` : esc(r);
};

/** The command's name and its positionals from "install <image>", "save <images..>", "uninstall [name]". */
function parseCommand(cmd) {
  const [name, ...rest] = cmd.split(/\s+/);
  return { name, args: rest.map((a) => ({ required: a.startsWith('<'), variadic: a.includes('..'), name: a.replace(/[<>[\].]/g, '') })) };
}

function synopsisArgs(args) {
  return args
    .map((a) => {
      const word = `\\fI${esc(a.name.toUpperCase())}\\fR${a.variadic ? '\\ ...' : ''}`;
      return a.required ? word : `[${word}]`;
    })
    .join(' ');
}

/** The word for an option's value: the first capitalised word its description uses (UNIT, KEY=VALUE, USER:PASS), else from its name. */
function placeholder(o) {
  if (o.type === 'number') return 'N';
  const m = /(?<![\w/-])([A-Z][A-Z_]{2,}(?:[=:][A-Z_]+)?)(?![\w/])/.exec(o.describe ?? '');
  if (m && !['HTTPS', 'HTTP', 'OCI', 'JSON', 'TTY'].includes(m[1])) return m[1];
  if (/file|policy|key|output/.test(o.name)) return 'FILE';
  if (/\.d$|dir|root/.test(o.name)) return 'DIR';
  if (/cmd/.test(o.name)) return 'COMMAND';
  return 'VALUE';
}

function optionItem(o) {
  const raw = [o.alias ?? []].flat();
  const aliases = [...raw.filter((a) => a.length === 1), o.name, ...raw.filter((a) => a.length > 1)].map((a) => (a.length === 1 ? `\\-${a}` : `\\-\\-${esc(a)}`));
  const takesValue = o.type === 'string' || o.type === 'number' || o.choices || o.array;
  const value = takesValue ? ` \\fI${o.choices ? o.choices.map(esc).join('|') : esc(placeholder(o))}\\fR` : '';
  const names = aliases;
  let text = o.describe ?? o.description ?? o.desc ?? '';
  text = cap(text);
  if (text && !/[.!?]$/.test(text)) text += '.';
  const notes = [];
  if (o.array) notes.push('Repeatable.');
  if (o.defaultDescription !== undefined) notes.push(`Default: ${o.defaultDescription}.`);
  else if (o.default !== undefined && !(Array.isArray(o.default) && o.default.length === 0) && o.default !== false) notes.push(`Default: ${o.default}.`);
  if (o.type === 'boolean' && o.default === true) notes.push(`\`--no-${o.name}\` turns it off.`);
  if (o.demandOption) notes.push('Required.');
  return `.TP\n\\fB${names.join(', ')}\\fR${value}\n${para([text, ...notes].filter(Boolean).join(' '))}\n`;
}

function optionsSection(opts) {
  return opts.filter((o) => !o.hidden).map(optionItem).join('');
}

function positionalsText(args, positionals) {
  return args
    .map((a) => {
      const p = positionals.find((x) => x.name === a.name) ?? {};
      let d = p.describe ?? p.description ?? '';
      if (p.choices) d = `${d ? `${d}; ` : ''}one of ${p.choices.join(', ')}`;
      return `.TP\n.I ${esc(a.name.toUpperCase())}\n${para(d && !/[.]$/.test(d) ? `${d}.` : d)}\n`;
    })
    .join('');
}

/** A long example command folded with " \\" continuations so the page stays within 80 columns. */
function fold(cmd, width = 64) {
  const lines = [];
  let line = '';
  for (const w of cmd.split(' ')) {
    if (line && line.length + 1 + w.length > width) {
      lines.push(`${line} \\`);
      line = `    ${w}`;
    } else line = line ? `${line} ${w}` : w;
  }
  return [...lines, line].join('\n');
}

const example = ([cmd, desc], i) => `${i ? '.PP\n' : ''}${para(cap(desc) + (/[.]$/.test(desc) ? '' : '.'))}\n.PP\n.RS 4\n.EX\n${esc(fold(cmd.replace(/\$0/g, 'berth')))}\n.EE\n.RE\n`;

function commonSections(prose, examples, isTop) {
  let s = '.SH EXIT STATUS\n';
  if (!isTop) s += 'As every berth command (see\n.BR berth (8)):\n';
  s += cli.exitCodes.map(([n, , long]) => `.TP\n.B ${n}\n${para(long)}\n`).join('');
  s += '.SH ENVIRONMENT\n';
  s += environment.map(([name, text]) => `.TP\n.B ${esc(name)}\n${para(text)}\n`).join('');
  s += '.SH FILES\n';
  s += (prose.files ?? defaultFiles).map(([f, text]) => `.TP\n.I ${esc(f)}\n${para(text)}\n`).join('');
  if (examples.length) s += `.SH EXAMPLES\n${examples.map(example).join('')}`;
  return s;
}

const header = (title, summary) => `.\\" Generated by packaging/gen-man.mjs from src/cli/commands.ts and packaging/man-prose.mjs; do not edit.
.TH ${title.toUpperCase()} 8 ${date} "berth ${version}" "System Administration"
.nr HY 0
.nh
.ad l
.SH NAME
${esc(title)} \\- ${esc(summary)}
`;

/** "trust policy file" -> "Trust policy file"; "docker://..." and "OS/ARCH" stay as they are. */
const cap = (s) => (/^[a-z]+(?:-[a-z]+)*(?![\w:/.[-])/.test(s) ? s[0].toUpperCase() + s.slice(1) : s);
const lc = (s) => s.replace(/^[A-Z](?![A-Z])/, (c) => c.toLowerCase()).replace(/\.$/, '');
const global = record(cli.globalOptions).options;
const pagesOut = {};

// berth(8)
{
  const prose = pages[''];
  let man = header('berth', cli.summary);
  man += '.SH SYNOPSIS\n.B berth\n.I command\n.RI [ options ]\n.br\n.B berth\n.RB [ \\-\\-help | \\-\\-version ]\n';
  man += `.SH DESCRIPTION\n${prose.description.map(para).join('\n.PP\n')}\n`;
  man += '.SH COMMANDS\n';
  for (const c of cli.commands) {
    const { name } = parseCommand(c.command);
    man += `.TP\n.BR berth\\-${esc(name)} (8)\n${para(`${c.describe}.`)}\n`;
  }
  man += `.SH OPTIONS\nThese options are accepted by every command.\n${optionsSection(global)}.TP\n.BR \\-h ", " \\-\\-help\nShow help (of a command, after its name) and exit.\n.TP\n.B \\-\\-version\nShow berth's version and exit.\n`;
  man += commonSections(prose, prose.examples ?? [], true);
  man += `.SH SEE ALSO\n${[...cli.commands.map((c) => `berth-${parseCommand(c.command).name}(8)`), ...seeAlso].map(ref).join(',\n')}\n`;
  pagesOut['berth.8'] = man;
}

// berth-COMMAND(8)
for (const c of cli.commands) {
  const { name, args } = parseCommand(c.command);
  const prose = pages[name] ?? {};
  const rec = record(c.builder);
  const aliases = [c.aliases ?? []].flat();
  let man = header(`berth-${name}`, lc(c.describe));
  man += '.SH SYNOPSIS\n';
  if (rec.commands.length) {
    man += rec.commands
      .map((sub) => {
        const s = parseCommand(sub.command);
        return `.B berth ${esc(name)} ${esc(s.name)}\n.RI [ options ]\n${s.args.length ? `${synopsisArgs(s.args)}\n` : ''}`;
      })
      .join('.br\n');
  } else {
    man += `.B berth ${esc(name)}\n.RI [ options ]\n${args.length ? `${synopsisArgs(args)}\n` : ''}`;
  }
  man += `.SH DESCRIPTION\n${para(`${c.describe}.`)}\n`;
  if (prose.description) man += `.PP\n${prose.description.map(para).join('\n.PP\n')}\n`;
  if (aliases.length) man += `.PP\nAlso called\n${aliases.map((a) => `.B berth ${esc(a)}`).join(',\n')}.\n`;
  if (!rec.commands.length && args.length) man += positionalsText(args, rec.positionals);
  const examples = [...rec.examples];
  if (rec.commands.length) {
    man += '.SH COMMANDS\n';
    for (const sub of rec.commands) {
      const s = parseCommand(sub.command);
      const subRec = record(sub.builder);
      examples.push(...subRec.examples);
      man += `.SS "berth ${esc(name)} ${esc(s.name)}${s.args.length ? ` ${s.args.map((a) => a.name.toUpperCase()).join(' ')}` : ''}"\n${para(`${sub.describe}.`)}\n`;
      man += positionalsText(s.args, subRec.positionals);
      man += optionsSection(subRec.options);
    }
  }
  man += `.SH OPTIONS\n${optionsSection(rec.options)}`;
  man += `.SS "Common options"\n${optionsSection(global)}.TP\n.BR \\-h ", " \\-\\-help\nShow this command's help and exit.\n`;
  examples.push(...(prose.examples ?? []));
  man += commonSections(prose, examples, false);
  man += `.SH SEE ALSO\n${['berth(8)', ...seeAlso].map(ref).join(',\n')}\n`;
  pagesOut[`berth-${name}.8`] = man;
}

mkdirSync(outDir, { recursive: true });
for (const [file, text] of Object.entries(pagesOut)) writeFileSync(path.join(outDir, file), text);
process.stderr.write(`gen-man: ${Object.keys(pagesOut).length} pages in ${outDir}\n`);
