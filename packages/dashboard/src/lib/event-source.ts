import type { TroveEvent } from 'trove-sdk';

/**
 * Who made a change: `exec` for a command (one-shot exec or background process, seen in the
 * sandbox), `api` for the files API (`data.source` absent, `api`, or the older `write`/`upload`).
 */
export type ChangeSource = 'exec' | 'api';

/** The source filter of the events page: every event, or only one source's. */
export type SourceFilter = '' | ChangeSource;

/** Event types that report a change to a namespace tree. */
const CHANGE_TYPES = new Set(['file.written', 'file.deleted', 'files.changed', 'dir.created', 'dir.deleted']);

/** The `data` of any event, including types this build does not know yet. */
export function dataOf(e: TroveEvent): Record<string, unknown> {
  return (e.data ?? {}) as Record<string, unknown>;
}

/** Which source made the event: `exec` only when the server says so. */
export function sourceOf(e: TroveEvent): ChangeSource {
  return dataOf(e).source === 'exec' ? 'exec' : 'api';
}

/** The source badge of an event, or null for events that are not changes to a tree. */
export function sourceBadge(e: TroveEvent): ChangeSource | null {
  const d = dataOf(e);
  return CHANGE_TYPES.has(e.type) || typeof d.source === 'string' ? sourceOf(e) : null;
}

/** Whether `e` passes the source filter. */
export function matchesSource(e: TroveEvent, filter: SourceFilter): boolean {
  return filter === '' || sourceOf(e) === filter;
}

/** The command behind an event: the exec or background process that made it, when the event names one. */
export function commandOf(e: TroveEvent): { kind: 'exec'; id: string } | { kind: 'process'; id: string } | null {
  const d = dataOf(e);
  if (typeof d.processId === 'string' && d.processId) return { kind: 'process', id: d.processId };
  if (typeof d.execId === 'string' && d.execId) return { kind: 'exec', id: d.execId };
  return null;
}
