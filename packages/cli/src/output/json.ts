/**
 * `--json` prints the wire's snake_case field names (what the HTTP API and the Python
 * CLI show), so the SDK's camelCased objects are converted back.
 */

export function toWire(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(toWire);
  if (value === null || typeof value !== 'object') return value;
  if (value instanceof Date) return value.toISOString();
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (typeof v === 'function') continue;
    out[snakeKey(k)] = toWire(v);
  }
  return out;
}

function snakeKey(key: string): string {
  return key.replace(/[A-Z]/g, (c) => '_' + c.toLowerCase());
}
