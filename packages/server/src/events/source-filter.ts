/**
 * `source=`: which kind of actor made a change. File events say it in `data.source`: `write` and
 * `upload` (the files API's writes, PROTOCOL.md), `api` (its deletes), `exec` (what commands did,
 * src/changes/). `api` stands for all three of the files API's. Events without a source (exec.completed,
 * key.created…) match no source filter.
 */
import { AppError } from '../errors.js';

export const EVENT_SOURCES = ['exec', 'api', 'write', 'upload'] as const;
export type EventSource = (typeof EVENT_SOURCES)[number];

/** The `data.source` values a filter list stands for (`api` expanded). */
export function sourceValues(sources: readonly string[]): string[] {
  const out = new Set<string>();
  for (const s of sources) {
    if (s === 'api') ['api', 'write', 'upload'].forEach((v) => out.add(v));
    else out.add(s);
  }
  return [...out];
}

/** `exec`, `api,exec`…: null when absent or empty; a 400 naming the known values for anything else. */
export function parseSources(raw: string | undefined | null): string[] | null {
  if (raw === undefined || raw === null) return null;
  const list = raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (list.length === 0) return null;
  for (const s of list) {
    if (!(EVENT_SOURCES as readonly string[]).includes(s)) {
      throw new AppError(
        'query_invalid',
        `Invalid source: "${s.slice(0, 100)}" (known: ${EVENT_SOURCES.join(', ')}; comma-separated)`,
      );
    }
  }
  return [...new Set(list)];
}

/** Does an event's data pass a source filter (null: no filter)? */
export function matchesSource(data: Record<string, unknown>, sources: readonly string[] | null): boolean {
  if (sources === null) return true;
  return typeof data.source === 'string' && sourceValues(sources).includes(data.source);
}

/**
 * The stored data's JSON text holds `"source":"<v>"` exactly when `data.source` is v: it is written by
 * JSON.stringify (no spaces), and a quote inside a string value is escaped, so the pattern cannot be
 * matched by a path. Dialect-neutral (LIKE), for the events list.
 */
export function sourceLikePatterns(sources: readonly string[]): string[] {
  return sourceValues(sources).map((v) => `%"source":"${v}"%`);
}
