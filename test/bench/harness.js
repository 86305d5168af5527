// @ts-check
/**
 * What every benchmark here shares: a deadline, Ctrl-C and SIGTERM handling, the JSON result file,
 * cleanup that runs whatever happened, and an exit code that says whether the figures are valid.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import process from 'node:process';
import { clearTimeout, setTimeout } from 'node:timers';

/**
 * @template {{ problems: string[] }} R
 * @param {{
 *   deadlineMs: number,
 *   deadlineText: string,
 *   resultFile: string,
 *   run: () => Promise<R>,
 *   print: (report: R) => void,
 *   cleanup: () => Promise<void>,
 *   onAbort: () => void,
 * }} bench
 */
export async function runBench(bench) {
  /** @type {(error: Error) => void} */
  let abort = () => undefined;
  /** @type {Promise<never>} */
  const abortion = new Promise((_, reject) => {
    abort = (error) => {
      bench.onAbort();
      reject(error);
    };
  });
  const deadline = setTimeout(() => {
    abort(new Error(`the benchmark took longer than ${bench.deadlineText}`));
  }, bench.deadlineMs);
  /** @param {NodeJS.Signals} signal */
  const onSignal = (signal) => {
    abort(new Error(`interrupted by ${signal}`));
  };
  process.once('SIGINT', onSignal).once('SIGTERM', onSignal);
  let failed = false;
  try {
    const report = await Promise.race([bench.run(), abortion]);
    await mkdir(dirname(bench.resultFile), { recursive: true });
    await writeFile(bench.resultFile, JSON.stringify(report, null, 2) + '\n');
    bench.print(report);
    if (report.problems.length > 0) {
      failed = true;
      process.stderr.write(`bench: these figures are not valid:\n  ${report.problems.join('\n  ')}\n`);
    }
  } catch (error) {
    failed = true;
    process.stderr.write(`bench: ${error instanceof Error ? error.message : String(error)}\n`);
  } finally {
    clearTimeout(deadline);
    await bench.cleanup();
  }
  process.exit(failed ? 1 : 0);
}

/**
 * Rows of cells as aligned text: the first `left` columns padded on the right, the rest (numbers)
 * on the left.
 * @param {unknown[][]} rows
 * @param {number} left
 */
export function table(rows, left) {
  const cells = rows.map((row) =>
    row.map((cell) => (typeof cell === 'string' ? cell : JSON.stringify(cell))),
  );
  const widths = cells[0]?.map((_, i) => Math.max(...cells.map((row) => (row[i] ?? '').length))) ?? [];
  return cells
    .map(
      (row) =>
        '  ' +
        row
          .map((cell, i) => (i < left ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0)))
          .join('  '),
    )
    .join('\n');
}
