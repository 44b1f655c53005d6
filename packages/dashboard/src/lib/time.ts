// The CLI's formatter, bundled at build time (a dependency-free file), so the dashboard and
// `trove tail` print the very same stamps.
import { formatTimestamp } from '../../../cli/src/output/time';

const pad = (n: number) => String(n).padStart(2, '0');

/**
 * Local time the way the CLI prints event stamps: `HH:MM:SS` for today, `MM-DD HH:MM:SS` for
 * anything older (or in the future, e.g. a retry schedule on another day).
 */
export function formatStamp(iso: string | null | undefined, now: Date = new Date()): string {
  return iso ? formatTimestamp(iso, now) : '—';
}

/** Full local date and time, for tooltips next to short stamps. */
export function formatFull(iso: string | null | undefined): string {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(
    d.getMinutes(),
  )}:${pad(d.getSeconds())} (${iso})`;
}
