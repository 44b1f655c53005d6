/**
 * Race: POST /v1/snapshots while a tenant process keeps exchanging `d` with a symlink to a victim
 * (harness.ts). A snapshot takes the namespace's exclusive lock, which waits for exec: the attacker here is
 * the host process working in the namespace's directory, as a tenant process the lock cannot exclude.
 * Every stored archive is opened: it may hold `l` as a link, never a victim's files or names.
 */
import { describe, it } from 'vitest';
import { startServer } from '../../../../../test/helpers/server.js';
import { ITERATIONS, raceServerOptions, raceTimeout, withRace } from './harness.js';

describe('race: snapshot create over a directory swapped with a symlink', () => {
  it('POST /v1/snapshots captures nothing outside the namespace', { timeout: raceTimeout() }, async () => {
    await withRace(await startServer(raceServerOptions()), async (race) => {
      await race.startHostAttacker();
      const op = 'POST /v1/snapshots';
      let own = 0;
      await race.drive(ITERATIONS, 2, async (i) => {
        const r = await race.post(op, '/v1/snapshots', { label: `race ${i}` });
        if (r.status !== 200) return;
        const id = (JSON.parse(r.text) as { snapshot_id: string }).snapshot_id;
        // Read before the next creates can prune it (at most 100 are kept per namespace).
        const archive = race.snapshotArchive(id);
        race.scan(`the archive of ${id}`, archive);
        if (archive.includes('evil x\n')) own++;
      });
      if (own === 0) race.problem("no archive held the namespace's own d/sub/x: the capture did not run");
      await race.finish([op]);
    });
  });
});
