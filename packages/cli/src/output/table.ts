/**
 * Tables for terminals, tab-separated rows for pipes (no header, no colour), the
 * way `gh` prints lists: readable on a TTY, `cut`-able otherwise.
 */
import { visibleLength, type Palette } from './color.js';

export interface TableOptions {
  header: string[];
  tty: boolean;
  palette: Palette;
}

export function renderTable(rows: string[][], opts: TableOptions): string {
  if (!opts.tty) return rows.map((r) => r.join('\t') + '\n').join('');
  const all = [opts.header, ...rows];
  const widths = opts.header.map((_, i) => Math.max(...all.map((r) => visibleLength(r[i] ?? ''))));
  const line = (r: string[], style: (s: string) => string) =>
    r
      .map((cell, i) => {
        const last = i === r.length - 1;
        const styled = style(cell);
        return last ? styled : styled + ' '.repeat(widths[i]! - visibleLength(cell) + 2);
      })
      .join('')
      .trimEnd() + '\n';
  return line(opts.header, (s) => opts.palette.bold(s)) + rows.map((r) => line(r, (s) => s)).join('');
}
