/** `--source`: which actor's events (exec: what commands changed; api: the files API's writes and deletes). */
import type { EventSource } from 'trove-sdk';
import { UsageError } from '../errors.js';

const SOURCES: readonly EventSource[] = ['exec', 'api', 'write', 'upload'];

export function parseSources(values: string[] | undefined): EventSource[] | undefined {
  if (!values || values.length === 0) return undefined;
  for (const v of values) {
    if (!(SOURCES as readonly string[]).includes(v)) {
      throw new UsageError(
        `--source: unknown source "${v}" (use ${SOURCES.join(', ')}; repeatable or comma-separated)`,
      );
    }
  }
  return values as EventSource[];
}
