/**
 * Race: DELETE /v1/workspaces/{ws}/namespaces/evil while a tenant process keeps exchanging `d` with a
 * symlink to a victim (harness.ts). The delete takes the namespace's exclusive lock (it waits for exec),
 * so the attacker is the host process: it holds the tree open and keeps swapping while the server moves it
 * away and removes it, then waits for the namespace to be recreated. Each iteration recreates the tree.
 */
import { describe, expect, it } from 'vitest';
import { lstatSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { startServer } from '../../../../../test/helpers/server.js';
import { raceServerOptions, raceTimeout, waitFor, withRace } from './harness.js';

/**
 * Fewer than the 2,000 of the other operations: each round recreates the namespace (two writes, each
 * fsync'd) and deletes it (rename, removal, database rows), tens of milliseconds where the others take one.
 */
const ROUNDS = 250;

describe('race: namespace delete over a directory swapped with a symlink', () => {
  it('DELETE of the namespace removes nothing outside it', { timeout: raceTimeout(ROUNDS, 1000) }, async () => {
    await withRace(await startServer(raceServerOptions()), async (race) => {
      await race.startHostAttacker();
      const op = 'DELETE /v1/workspaces/{ws}/namespaces/evil';
      const d = join(race.evilDir, 'd');
      for (let i = 0; i < ROUNDS; i++) {
        if (i > 0) {
          await race.makeEvilTree('POST /write (recreate the namespace)');
          // The link as the tenant would make it (a host stand-in: an exec per iteration would be slow).
          symlinkSync(race.targets[i % race.targets.length]!, join(race.evilDir, 'l'));
        }
        // The attacker has found this tree once `d` has been seen as a link.
        await waitFor(
          () => lstatSync(d, { throwIfNoEntry: false })?.isSymbolicLink() === true,
          () => null,
          `the attacker to swap in namespace evil (iteration ${i})`,
        );
        const r = await race.request(
          op,
          `/v1/workspaces/${race.workspaceId}/namespaces/evil`,
          { method: 'DELETE' },
          'admin',
        );
        expect(r.status, `${op}: ${r.text}`).toBe(200);
      }
      await race.finish([op], ROUNDS);
    });
  });
});
