/** `--since`: a duration back from now (`90s`, `1h30m`, `2d`, `1w`) or an ISO time. */
import { UsageError } from '../errors.js';

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** The ISO-8601 UTC instant `value` stands for. */
export function parseSince(value: string, now: Date = new Date()): string {
  const v = value.trim();
  if (/^(\d+[smhdw])+$/i.test(v)) {
    let ms = 0;
    for (const [, n, unit] of v.toLowerCase().matchAll(/(\d+)([smhdw])/g)) ms += Number(n) * UNIT_MS[unit!]!;
    return new Date(now.getTime() - ms).toISOString();
  }
  // A date or date-time (ISO-8601); a bare date means its start in UTC, as Date.parse reads it.
  if (/^\d{4}-\d{2}-\d{2}([T ][\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/i.test(v)) {
    const t = Date.parse(v.replace(' ', 'T'));
    if (!Number.isNaN(t)) return new Date(t).toISOString();
  }
  throw new UsageError(`--since: cannot read "${value}"`, {
    hint: 'use a duration like 90s, 1h30m, 2d or 1w, or an ISO time like 2026-11-25T10:00:00Z',
  });
}
