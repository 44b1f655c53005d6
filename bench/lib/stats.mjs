/** Percentiles and small formatting helpers (nearest-rank, no interpolation). */

export function percentile(values, p) {
  if (values.length === 0) return NaN;
  const s = Float64Array.from(values).sort();
  const rank = Math.ceil((p / 100) * s.length);
  return s[Math.min(s.length - 1, Math.max(0, rank - 1))];
}

export const median = (values) => percentile(values, 50);

export function summarize(values) {
  return {
    n: values.length,
    p50: percentile(values, 50),
    p90: percentile(values, 90),
    p99: percentile(values, 99),
    max: values.reduce((m, v) => (v > m ? v : m), values.length ? -Infinity : NaN),
  };
}

export const MiB = 1024 * 1024;

/** Enough digits to compare, never more: 12,345 · 123.4 · 1.23 · 0.031. */
export function fmtNum(n, digits) {
  if (n === null || n === undefined || Number.isNaN(n)) return '—';
  const a = Math.abs(n);
  if (a >= 1000) return Math.round(n).toLocaleString('en-US');
  if (digits !== undefined) return n.toFixed(digits);
  if (Number.isInteger(n)) return String(n);
  if (a >= 10) return n.toFixed(1);
  if (a >= 0.1) return n.toFixed(2);
  return n.toFixed(3);
}

export function fmtBytes(n) {
  if (n === null || n === undefined || Number.isNaN(n)) return '—';
  return `${(n / MiB).toFixed(1)} MiB`;
}
