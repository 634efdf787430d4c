/** Locating berth's built-in templates (templates/ at the package root). */
import fs from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

const root = new URL('../../templates/', import.meta.url);

export function builtinTemplatePath(name: string): string {
  return fileURLToPath(new URL(name, root));
}

export function readBuiltinTemplate(name: string): Promise<string> {
  return fs.readFile(builtinTemplatePath(name), 'utf8');
}
