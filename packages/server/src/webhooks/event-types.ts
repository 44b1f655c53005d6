/**
 * Every event type the server emits (docs/protocol.md "Events"); `["*"]` also matches future ones.
 * Dependency-free on purpose: the dashboard bundles this very file for its filters, so the two
 * lists cannot drift apart.
 */
export const EVENT_TYPES = [
  'file.written',
  'file.deleted',
  'dir.created',
  'dir.deleted',
  'files.changed',
  'exec.completed',
  'process.started',
  'process.exited',
  'snapshot.created',
  'snapshot.restored',
  'snapshot.deleted',
  'namespace.deleted',
  'workspace.created',
  'key.created',
  'key.revoked',
  'webhook.test',
] as const;

export type EventType = (typeof EVENT_TYPES)[number];
