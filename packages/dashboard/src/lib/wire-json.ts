/**
 * An SDK object as the server sent it: the SDK camelCases every key (`size_bytes` → `sizeBytes`);
 * this turns them back, so the JSON the events page shows is the JSON webhooks deliver. Exact for
 * the protocol's keys, which are lower-case words joined by `_`, none starting with a digit.
 */
export function toWire(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(toWire);
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) out[snakeKey(k)] = toWire(v);
  return out;
}

function snakeKey(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}
