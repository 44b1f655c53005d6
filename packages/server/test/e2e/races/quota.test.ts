/**
 * Race: the namespace usage measure (the namespaces listing's size_bytes/file_count, and the quota check
 * of every write) while the tenant keeps exchanging `d` with a symlink to a victim (harness.ts). Every
 * victim file holds at least 1000 bytes and the whole namespace under 100: a measure that walks through
 * the link counts the victim's files (it lists them) and shows it in the figures, or refuses a write for
 * quota.
 */
import { describe, expect, it } from 'vitest';
import { lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { startServer } from '../../../../../test/helpers/server.js';
import { ITERATIONS, raceServerOptions, raceTimeout, withRace } from './harness.js';

const QUOTA_BYTES = 4096;

/** Regular files and their bytes under `dir`, links not followed (only while nothing swaps in it). */
function holdings(dir: string): { bytes: number; files: number } {
  let bytes = 0;
  let files = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      const sub = holdings(p);
      bytes += sub.bytes;
      files += sub.files;
    } else if (e.isFile()) {
      bytes += lstatSync(p).size;
      files++;
    }
  }
  return { bytes, files };
}

describe('race: the usage measure over a directory swapped with a symlink', () => {
  it(
    'counts nothing outside the namespace (namespaces listing, quota check of writes)',
    { timeout: raceTimeout(2 * ITERATIONS) },
    async () => {
      await withRace(await startServer(raceServerOptions()), async (race) => {
        // The victims were written without a quota; from now on every request measures afresh.
        await race.restart({ TROVE_QUOTA_BYTES: String(QUOTA_BYTES), TROVE_QUOTA_CACHE_MS: '0' });
        const q = await race.post('setup: POST /write q.txt', '/write', { path: 'q.txt', content: 'quota 0\n' });
        expect(q.status, q.text).toBe(200);
        // Taken before the attack (a walk by names during it would itself slip through the link); exchanging
        // d and l moves no file, so this is what the namespace holds, plus the attacker's marker file.
        const own = holdings(race.evilDir);
        expect(own.bytes).toBeLessThan(200);
        await race.startSandboxAttacker();
        await race.startHostAttacker();

        const listing = `GET /v1/workspaces/{ws}/namespaces`;
        await race.drive(ITERATIONS, 4, async () => {
          const r = await race.request(listing, `/v1/workspaces/${race.workspaceId}/namespaces`);
          if (r.status !== 200) return;
          const evil = (
            JSON.parse(r.text) as { namespaces: Array<{ name: string; size_bytes: number; file_count: number }> }
          ).namespaces.find((n) => n.name === 'evil');
          // A walk may meet the directory under both names (d, then l after a swap) and count the namespace's
          // own files twice: the tenant's own doing, and still far below one victim file (>= 1000 bytes each).
          if (!evil) race.problem(`${listing}: namespace evil missing: ${r.text.slice(0, 200)}`);
          else if (evil.size_bytes >= 1000) {
            race.problem(
              `${listing}: evil measured ${evil.size_bytes} bytes in ${evil.file_count} files, but it holds about ${own.bytes} bytes in ${own.files}: the measure counted files outside it`,
            );
          }
        });

        // Same size every time: the usage never changes, so a quota refusal means victim bytes were counted.
        const write = 'POST /write q.txt (quota check)';
        await race.drive(ITERATIONS, 4, async (i) => {
          const r = await race.post(write, '/write', { path: 'q.txt', content: `quota ${i % 10}\n` });
          if (r.status !== 200)
            race.problem(
              `${write}: answered ${r.status} for a namespace holding ${own.bytes} of ${QUOTA_BYTES} bytes: ${r.text.slice(0, 200)}`,
            );
        });
        await race.finish([listing, write]);
      });
    },
  );
});
