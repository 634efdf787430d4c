/** What /proc/PID/smaps says about one mapped file: which inode, and how its pages are counted. */

export interface FileMapping {
  /** major:minor, as in /proc/PID/maps. */
  dev: string;
  inode: string;
  /** Summed over the file's mappings (text, data...), KiB. */
  rssKb: number;
  /** Proportional share: Rss divided among the processes mapping each page. */
  pssKb: number;
  sharedCleanKb: number;
  privateCleanKb: number;
}

const HEAD = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ (\S+) (\d+)\s+(.*)$/;
const FIELD = /^(Rss|Pss|Shared_Clean|Private_Clean):\s+(\d+) kB/;
const KEY = { Rss: 'rssKb', Pss: 'pssKb', Shared_Clean: 'sharedCleanKb', Private_Clean: 'privateCleanKb' } as const;

/** The mappings of the file whose path ends with `/${basename}` in smaps `text`; undefined when it is not mapped. */
export function fileMapping(text: string, basename: string): FileMapping | undefined {
  let inFile = false;
  let found: FileMapping | undefined;
  for (const line of text.split('\n')) {
    const head = HEAD.exec(line);
    if (head) {
      inFile = head[3]!.endsWith(`/${basename}`);
      if (inFile) found ??= { dev: head[1]!, inode: head[2]!, rssKb: 0, pssKb: 0, sharedCleanKb: 0, privateCleanKb: 0 };
      continue;
    }
    const kv = FIELD.exec(line);
    if (inFile && found && kv) found[KEY[kv[1] as keyof typeof KEY]] += Number(kv[2]);
  }
  return found;
}
