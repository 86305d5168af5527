// Builds the driver's native helper (driver/native/upc-ns.c) when npm installs the project.
// Linux only; without a C compiler the agent still works, with sessions as plain folders
// (upc says why when isolation is asked for).
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

const driver = join(dirname(fileURLToPath(import.meta.url)), '..');
if (process.platform !== 'linux') process.exit(0);
const compiler = process.env.CC ?? 'gcc';
mkdirSync(join(driver, 'build'), { recursive: true });
const result = spawnSync(
  compiler,
  [
    '-O2',
    '-Wall',
    '-Wextra',
    '-Werror',
    '-o',
    join(driver, 'build', 'upc-ns'),
    join(driver, 'native', 'upc-ns.c'),
  ],
  { stdio: 'inherit' },
);
if (result.error || result.status !== 0) {
  process.stderr.write(
    `upc: could not build the driver's native helper with ${compiler} (${result.error?.message ?? `exit ${result.status}`}); ` +
      'sessions will not be isolated on this PC. Install gcc and run npm ci again.\n',
  );
}
