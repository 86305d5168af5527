import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

/**
 * A small C program of a test's, compiled with gcc (which `npm ci` needs anyway for the driver's
 * helper). `dispose` removes it.
 */
export async function compileProgram(
  name: string,
  source: string,
): Promise<{ path: string; dispose: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), `upc-${name}-`));
  await writeFile(join(dir, `${name}.c`), source);
  const path = join(dir, name);
  await promisify(execFile)('gcc', ['-O1', '-Wall', '-o', path, join(dir, `${name}.c`)]);
  return { path, dispose: () => rm(dir, { recursive: true, force: true }) };
}
