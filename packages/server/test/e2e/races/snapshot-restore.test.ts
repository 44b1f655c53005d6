/**
 * Race: POST /v1/snapshots/{id}/restore of a snapshot whose tree holds `d` as a real directory and `l` as a
 * link to a victim, while a tenant process keeps exchanging them (harness.ts). A restore takes the
 * namespace's exclusive lock (it waits for exec), so the attacker is the host process: it holds the tree
 * open, so it keeps swapping in the old tree while the server removes it, then in the restored one.
 */
import { describe, expect, it } from 'vitest';
import { startServer } from '../../../../../test/helpers/server.js';
import { raceServerOptions, raceTimeout, withRace } from './harness.js';

/**
 * Fewer than the 2,000 of the file operations: a restore reads and unpacks the archive, flushes the new
 * tree to disk, swaps it in and removes the old one, 100-250 ms here where a file operation takes a few.
 */
const ROUNDS = 250;

describe('race: snapshot restore over a directory swapped with a symlink', () => {
  it(
    'POST /v1/snapshots/{id}/restore removes and writes nothing outside the namespace',
    { timeout: raceTimeout(ROUNDS, 1500) },
    async () => {
      await withRace(await startServer(raceServerOptions()), async (race) => {
        // Taken before any attack: d is the real directory, l the link.
        const snap = await race.post('setup: POST /v1/snapshots', '/v1/snapshots', { label: 'd and l' });
        expect(snap.status, snap.text).toBe(200);
        const id = (JSON.parse(snap.text) as { snapshot_id: string }).snapshot_id;
        await race.startHostAttacker();
        const op = 'POST /v1/snapshots/{id}/restore';
        await race.drive(ROUNDS, 2, async () => {
          await race.post(op, `/v1/snapshots/${id}/restore`, undefined);
        });
        await race.finish([op], ROUNDS);
      });
    },
  );
});
