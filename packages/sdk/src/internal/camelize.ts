/**
 * snake_case → camelCase for response bodies. Safe to apply deeply because no
 * Trove response uses caller-chosen strings as object keys.
 */
export function camelize<T>(value: unknown): T {
  return convert(value) as T;
}

function convert(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(convert);
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) out[camelKey(k)] = convert(v);
  return out;
}

function camelKey(key: string): string {
  return key.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
}
