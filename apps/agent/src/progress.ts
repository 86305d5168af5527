/**
 * Progress for long restores and uploads: a bar redrawn in place on a terminal, plain lines
 * (at most one every two seconds) otherwise, always on standard error so `--json` output stays clean.
 */
export class Progress {
  /** When a line was last written; plain lines start only once the work has taken two seconds. */
  private lastLine = Date.now();
  private drawn = false;
  private last: [number, number] | undefined;
  /** Plain lines were written, the last of them not yet the final state. */
  private open = false;

  constructor(
    private readonly label: string,
    private readonly unit: 'bytes' | 'items',
    private readonly stream: NodeJS.WriteStream = process.stderr,
    private readonly quiet = false,
  ) {}

  update(done: number, total: number): void {
    if (this.quiet) return;
    this.last = [done, total];
    const now = Date.now();
    if (this.stream.isTTY) {
      if (now - this.lastLine < 100 && done < total) return;
      this.lastLine = now;
      const width = 30;
      const fraction = total > 0 ? Math.min(1, done / total) : 1;
      const filled = Math.round(fraction * width);
      const bar = '#'.repeat(filled) + '-'.repeat(width - filled);
      this.stream.write(
        `\r${this.label} [${bar}] ${String(Math.round(fraction * 100)).padStart(3)}% ${this.amount(done)}/${this.amount(total)}`,
      );
      this.drawn = true;
    } else if (now - this.lastLine >= 2000) {
      this.lastLine = now;
      this.stream.write(`${this.label}: ${this.amount(done)} of ${this.amount(total)}\n`);
      this.open = done < total;
    }
  }

  done(): void {
    if (this.drawn) this.stream.write('\n');
    else if (this.last && this.open) {
      // Plain output: close with where it ended, when a line was shown before.
      this.stream.write(`${this.label}: ${this.amount(this.last[0])} of ${this.amount(this.last[1])}\n`);
    }
    this.drawn = false;
    this.open = false;
  }

  private amount(n: number): string {
    if (this.unit === 'items') return String(Math.round(n));
    return formatBytes(n);
  }
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${Math.round(n)} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}
