/**
 * Write-ahead intent records: what a state change is about to do, made
 * durable before its first visible step and removed when it is done (or has
 * undone itself). A record that is still there when the state lock is next
 * taken belongs to a berth that died mid-way (SIGKILL, power cut): recovery
 * (ops/recover.ts) reads it and puts the host back, or forward.
 *
 *   ROOT/intents/NAME.json     one per container being installed, updated,
 *                              rolled back or uninstalled
 *   ROOT/intents/@images.json  a pull or load between its first image record
 *                              and its last reference (ops/layer-pipeline.ts)
 *   ROOT/intents/@stack.json   an ordered update of several containers (apply,
 *                              update --all): every member's record, and the
 *                              units it stopped to restart them once
 *
 * Records are written whole (temp file, fsync, rename, directory fsync), so
 * a reader sees an old record or a new one, never a torn one.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { BerthError, errnoCode } from '../errors.ts';
import { syncDir } from '../durable.ts';
import { ifExists, readdirIfExists, writeFileAtomic } from '../fsutil.ts';
import type { InstalledHostFiles } from './hostfs.ts';

export type ContainerOp = 'install' | 'update' | 'rollback' | 'uninstall';

/**
 * How far a container operation got, as far as recovery needs to know:
 *   stage   only a hidden staging directory may exist;
 *   commit  the new slot may be (partly) in place, NAME and the unit are untouched;
 *   switch  the live files (host files, tmpfiles, NAME, unit) may be half switched.
 */
export type IntentPhase = 'stage' | 'commit' | 'switch';

export interface ContainerIntent {
  version: 1;
  kind: 'container';
  op: ContainerOp;
  name: string;
  pid: number;
  started: string;
  phase: IntentPhase;
  /** The slot that was live before (update, rollback). */
  fromSlot?: 0 | 1;
  /** The slot being made live (install: 0). */
  toSlot?: 0 | 1;
  /** toSlot is written by this operation (install, update), so recovery removes it. */
  newSlot?: boolean;
  /** The unit's state before the switch: what recovery restores. */
  unitEnabled?: boolean;
  unitActive?: boolean;
  /** Host files and directories about to be created that did not exist before. */
  hostFiles?: InstalledHostFiles;
  /** uninstall --purge-data. */
  purgeData?: boolean;
}

/** What stored the images: every source of the layer pipeline (ops/layer-pipeline.ts). */
export type ImagesOp = 'pull' | 'load';

export interface IntendedImage {
  reference: string;
  manifestDigest: string;
  /** No image record existed before: undoing the operation removes it. */
  created: boolean;
}

/** Images whose layers are all stored, about to get their records and references. */
export interface ImagesIntent {
  version: 1;
  kind: 'images';
  op: ImagesOp;
  pid: number;
  started: string;
  images: IntendedImage[];
}

/**
 * An ordered update of several containers (ops/stack.ts). Recovery puts
 * every member back (last first) and starts again the units it stopped:
 * back is the rule for the whole transaction, even once every member is
 * switched, because "before" is the state known to work together.
 */
export interface StackIntent {
  version: 1;
  kind: 'stack';
  pid: number;
  started: string;
  /** What runs the transaction (apply, update --all), for messages. */
  op: string;
  /** In switch (dependency) order; each as a container operation's record (op update). */
  members: ContainerIntent[];
  /** Units stopped (they were active) to be started again at the end, in dependency order. */
  stopped: string[];
}

export type Intent = ContainerIntent | ImagesIntent | StackIntent;

const IMAGES_FILE = '@images.json';
const STACK_FILE = '@stack.json';

export function intentsDir(root: string): string {
  return path.join(root, 'intents');
}

function fileOf(root: string, intent: Intent): string {
  return path.join(intentsDir(root), intent.kind === 'images' ? IMAGES_FILE : intent.kind === 'stack' ? STACK_FILE : `${intent.name}.json`);
}

/** Make the record durable; replaces an earlier record for the same thing. */
export async function writeIntent(root: string, intent: Intent): Promise<void> {
  const dir = intentsDir(root);
  try {
    await fs.mkdir(dir, { mode: 0o700 });
    await syncDir(root);
  } catch (e) {
    if (errnoCode(e) !== 'EEXIST') throw e;
  }
  await writeFileAtomic(fileOf(root, intent), `${JSON.stringify(intent)}\n`, { mode: 0o600 });
}

export async function removeIntent(root: string, intent: Intent): Promise<void> {
  await fs.rm(fileOf(root, intent), { force: true });
  await ifExists(syncDir(intentsDir(root)));
}

/** Every pending record, images first (a container operation may wait on its pull). */
export async function readIntents(root: string): Promise<Intent[]> {
  const names = await readdirIfExists(intentsDir(root));
  const out: Intent[] = [];
  for (const name of names.sort((a, b) => (a === IMAGES_FILE ? -1 : b === IMAGES_FILE ? 1 : a.localeCompare(b)))) {
    const file = path.join(intentsDir(root), name);
    if (!name.endsWith('.json')) {
      // A temp file of a write that never got renamed: the record it would have replaced still rules.
      await fs.rm(file, { force: true });
      continue;
    }
    out.push(parseIntent(await fs.readFile(file, 'utf8'), file));
  }
  return out;
}

function parseIntent(text: string, file: string): Intent {
  try {
    const v = JSON.parse(text) as Intent;
    if (v.version !== 1 || (v.kind !== 'images' && v.kind !== 'container' && v.kind !== 'stack')) throw new Error('unknown version or kind');
    if (v.kind === 'stack' && (!Array.isArray(v.members) || !Array.isArray(v.stopped))) throw new Error('no members');
    if (v.kind === 'container' && (typeof v.name !== 'string' || typeof v.op !== 'string')) throw new Error('no name or op');
    if (v.kind === 'images' && (!Array.isArray(v.images) || !v.images.every((i) => typeof i.reference === 'string' && typeof i.manifestDigest === 'string'))) {
      throw new Error('no images');
    }
    return v;
  } catch (e) {
    throw new BerthError('IO_ERROR', `intent record ${file} is unreadable: ${(e as Error).message}`, {
      hint: 'it was written whole, so something else damaged it; check the container it names with berth status, then delete the file',
    });
  }
}

/** Where a container operation keeps its record: its own file (Journal) or its entry in a stack's (StackJournal). */
export interface IntentLog {
  readonly intent: Readonly<ContainerIntent>;
  write(patch?: Partial<Omit<ContainerIntent, 'version' | 'kind' | 'name' | 'op'>>): Promise<void>;
}

/** One operation's record, kept up to date as it moves through its phases. */
export class Journal implements IntentLog {
  private current: ContainerIntent;

  constructor(
    private readonly root: string,
    start: Omit<ContainerIntent, 'version' | 'kind' | 'pid' | 'started'>,
  ) {
    this.current = { version: 1, kind: 'container', pid: process.pid, started: new Date().toISOString(), ...start };
  }

  get intent(): Readonly<ContainerIntent> {
    return this.current;
  }

  async write(patch: Partial<Omit<ContainerIntent, 'version' | 'kind' | 'name' | 'op'>> = {}): Promise<void> {
    this.current = { ...this.current, ...patch };
    await writeIntent(this.root, this.current);
  }

  /** The operation finished (or undid itself): nothing is left to recover. */
  async done(): Promise<void> {
    await removeIntent(this.root, this.current);
  }
}

/** A stack's record: its members' records in one file, rewritten whole on every change. */
export class StackJournal {
  private current: StackIntent;

  constructor(
    private readonly root: string,
    op: string,
    members: Omit<ContainerIntent, 'version' | 'kind' | 'pid' | 'started'>[],
  ) {
    const base = { version: 1 as const, pid: process.pid, started: new Date().toISOString() };
    this.current = { ...base, kind: 'stack', op, members: members.map((m) => ({ ...base, kind: 'container', ...m })), stopped: [] };
  }

  get intent(): Readonly<StackIntent> {
    return this.current;
  }

  async write(): Promise<void> {
    await writeIntent(this.root, this.current);
  }

  /** Member `name`'s record, as a container operation sees its own. */
  member(name: string): IntentLog {
    const find = () => this.current.members.find((m) => m.name === name)!;
    if (!this.current.members.some((m) => m.name === name)) throw new BerthError('INTERNAL', `${name} is not a member of this stack`, { hint: 'this is a bug in berth' });
    return {
      get intent() {
        return find();
      },
      write: async (patch = {}) => {
        Object.assign(find(), patch);
        await this.write();
      },
    };
  }

  /** Record units about to be stopped, before stopping them. */
  async stopping(units: string[]): Promise<void> {
    const fresh = units.filter((u) => !this.current.stopped.includes(u));
    if (fresh.length === 0) return;
    this.current.stopped.push(...fresh);
    await this.write();
  }

  async done(): Promise<void> {
    await removeIntent(this.root, this.current);
  }
}
