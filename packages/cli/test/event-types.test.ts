/** Every event type the server emits has its own one-line summary in `tail` and `events list`. */
import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { EVENT_TYPES } from '../../server/src/webhooks/event-types.js';

it('summarizeEvent has a case for each event type, and none for types that do not exist', () => {
  const src = readFileSync(new URL('../src/output/events.ts', import.meta.url), 'utf8');
  const cases = [...src.matchAll(/case '([a-z]+\.[a-z_]+)':/g)].map((m) => m[1]);
  expect([...cases].sort()).toEqual([...EVENT_TYPES].sort());
});
