/** A one-line progress bar on stderr, redrawn at most 10 times a second; only used on a TTY. */
import { formatBytes } from './format.js';

export interface ProgressSink {
  write(s: string): unknown;
  columns?: number;
}

export class ProgressBar {
  #last = 0;
  #drawn = false;

  constructor(
    private readonly sink: ProgressSink,
    private readonly label: string,
  ) {}

  update(loaded: number, total: number | undefined, force = false): void {
    const now = Date.now();
    if (!force && now - this.#last < 100) return;
    this.#last = now;
    const width = Math.max(10, Math.min(30, (this.sink.columns ?? 80) - this.label.length - 40));
    let line: string;
    if (total && total > 0) {
      const frac = Math.min(1, loaded / total);
      const filled = Math.round(frac * width);
      line = `${this.label} [${'#'.repeat(filled)}${' '.repeat(width - filled)}] ${String(Math.floor(frac * 100)).padStart(3)}% ${formatBytes(loaded)}/${formatBytes(total)}`;
    } else {
      line = `${this.label} ${formatBytes(loaded)}`;
    }
    this.sink.write(`\r\x1b[2K${line}`);
    this.#drawn = true;
  }

  /** Clears the bar so the next line starts clean. */
  done(): void {
    if (this.#drawn) this.sink.write('\r\x1b[2K');
    this.#drawn = false;
  }
}
