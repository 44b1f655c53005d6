import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { ERROR_CODES } from '../src/errors.js';

describe('docs/errors.md', () => {
  it('documents exactly the codes and statuses of errors.ts', () => {
    const doc = readFileSync(new URL('../../../docs/errors.md', import.meta.url), 'utf8');
    const rows = new Map<string, number>();
    for (const m of doc.matchAll(/^\| `([a-z_]+)` \| (\d{3}) \|/gm)) rows.set(m[1]!, Number(m[2]));
    expect(Object.fromEntries(rows)).toEqual(ERROR_CODES);
  });
});
