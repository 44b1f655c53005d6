/**
 * The SDK is published on its own, so it cannot import the server's list of
 * event types; this keeps its discriminated union in step with that list.
 */
import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { EVENT_TYPES } from '../../server/src/webhooks/event-types.js';

it('TroveEvent has one member per event type the server emits, and no others', () => {
  const src = readFileSync(new URL('../src/types.ts', import.meta.url), 'utf8');
  const declared = [...src.matchAll(/EventEnvelope<\s*'([a-z]+\.[a-z_]+)'/g)].map((m) => m[1]);
  expect(new Set(declared).size).toBe(declared.length);
  expect([...declared].sort()).toEqual([...EVENT_TYPES].sort());
});
