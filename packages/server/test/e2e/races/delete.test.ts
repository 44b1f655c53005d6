/**
 * Race: POST /delete of a file and of a directory under `d` while the tenant keeps exchanging `d` with a
 * symlink to a victim (harness.ts). A delete must never reach through the link.
 */
import { describe, it } from 'vitest';
import { startServer } from '../../../../../test/helpers/server.js';
import { ITERATIONS, raceServerOptions, raceTimeout, withRace } from './harness.js';

describe('race: delete under a directory swapped with a symlink', () => {
  it('POST /delete d/f deletes nothing outside the namespace', { timeout: raceTimeout() }, async () => {
    await withRace(await startServer(raceServerOptions()), async (race) => {
      await race.startSandboxAttacker();
      await race.startHostAttacker();
      const op = 'POST /delete d/f';
      await race.drive(ITERATIONS, 4, async () => {
        await race.post(op, '/delete', { path: 'd/f' });
        // Recreated for the next delete (itself a write under `d`, so it is checked too).
        await race.post('POST /write d/f (recreate)', '/write', { path: 'd/f', content: 'evil f\n' });
      });
      await race.finish([op]);
    });
  });

  it('POST /delete d/sub (a directory) deletes nothing outside the namespace', { timeout: raceTimeout() }, async () => {
    await withRace(await startServer(raceServerOptions()), async (race) => {
      await race.startSandboxAttacker();
      await race.startHostAttacker();
      const op = 'POST /delete d/sub';
      await race.drive(ITERATIONS, 4, async () => {
        await race.post(op, '/delete', { path: 'd/sub' });
        await race.post('POST /write d/sub/x (recreate)', '/write', { path: 'd/sub/x', content: 'evil x\n' });
      });
      await race.finish([op]);
    });
  });
});
