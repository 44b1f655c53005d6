/** Durations given on the command line: `90s`, `10m`, `1h30m`, `2d`, `500ms`. */
import { UsageError } from '../errors.js';

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Milliseconds for `value`; `flag` names the option in the error. */
export function parseDuration(value: string, flag: string): number {
  const v = value.trim().toLowerCase();
  if (/^(\d+(ms|s|m|h|d))+$/.test(v)) {
    let ms = 0;
    for (const [, n, unit] of v.matchAll(/(\d+)(ms|s|m|h|d)/g)) ms += Number(n) * UNIT_MS[unit!]!;
    if (ms > 0) return ms;
  }
  throw new UsageError(`${flag}: cannot read "${value}"`, { hint: 'use a duration like 90s, 10m, 1h30m or 2d' });
}
