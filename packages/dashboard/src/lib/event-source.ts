import type { TroveEvent } from 'trove-sdk';

/**
 * Who made a change: `exec` for a command (one-shot exec or background process, seen in the
 * sandbox), `api` for the files API (`data.source` is `api`, or `write`/`upload` for its writes).
 */
export type ChangeSource = 'exec' | 'api';

/** The source filter of the events page: every event, or only one source's. */
export type SourceFilter = '' | ChangeSource;

/** The `data.source` values each filter stands for, as the events API reads `?source=`. */
const SOURCE_VALUES: Record<ChangeSource, readonly string[]> = { exec: ['exec'], api: ['api', 'write', 'upload'] };

/** Event types that report a change to a namespace tree. */
const CHANGE_TYPES = new Set(['file.written', 'file.deleted', 'files.changed', 'dir.created', 'dir.deleted']);

/** The `data` of any event, including types this build does not know yet. */
export function dataOf(e: TroveEvent): Record<string, unknown> {
  return (e.data ?? {}) as Record<string, unknown>;
}

/**
 * The source badge of an event, or null for events that are not changes to a tree. A change
 * without `data.source` is the files API's (servers before commands' changes were recorded).
 */
export function sourceBadge(e: TroveEvent): ChangeSource | null {
  const source = dataOf(e).source;
  if (source === 'exec') return 'exec';
  if (typeof source === 'string' ? SOURCE_VALUES.api.includes(source) : CHANGE_TYPES.has(e.type)) return 'api';
  return null;
}

/** Whether `e` passes the source filter, exactly as the server's `?source=` does: events without a source match none. */
export function matchesSource(e: TroveEvent, filter: SourceFilter): boolean {
  if (filter === '') return true;
  const source = dataOf(e).source;
  return typeof source === 'string' && SOURCE_VALUES[filter].includes(source);
}

/** The command behind an event: the exec or background process that made it, when the event names one. */
export function commandOf(e: TroveEvent): { kind: 'exec'; id: string } | { kind: 'process'; id: string } | null {
  const d = dataOf(e);
  if (typeof d.processId === 'string' && d.processId) return { kind: 'process', id: d.processId };
  if (typeof d.execId === 'string' && d.execId) return { kind: 'exec', id: d.execId };
  return null;
}
