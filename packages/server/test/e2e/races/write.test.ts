/**
 * Race: POST /write and PUT /files (with new parent directories) under `d` while the tenant keeps
 * exchanging `d` with a symlink to a victim (harness.ts). Nothing may be created, overwritten or chowned
 * outside the namespace, temp files included.
 */
import { describe, it } from 'vitest';
import { startServer } from '../../../../../test/helpers/server.js';
import { ITERATIONS, raceServerOptions, raceTimeout, withRace } from './harness.js';

describe('race: writes under a directory swapped with a symlink', () => {
  it('POST /write d/f writes nothing outside the namespace', { timeout: raceTimeout() }, async () => {
    await withRace(await startServer(raceServerOptions()), async (race) => {
      await race.startSandboxAttacker();
      await race.startHostAttacker();
      const op = 'POST /write d/f';
      await race.drive(ITERATIONS, 4, async (i) => {
        await race.post(op, '/write', { path: 'd/f', content: `evil write ${i}\n` });
      });
      await race.finish([op]);
    });
  });

  it(
    'PUT /files/d/new-N/deeper/x creates and chowns nothing outside the namespace',
    { timeout: raceTimeout() },
    async () => {
      await withRace(await startServer(raceServerOptions()), async (race) => {
        await race.startSandboxAttacker();
        await race.startHostAttacker();
        const op = 'PUT /files/d/new-N/deeper/x';
        // A new parent pair every time: each upload creates (and chowns) two directories below `d`.
        await race.drive(ITERATIONS, 4, async (i) => {
          await race.request(op, `/files/d/new-${i}/deeper/x`, { method: 'PUT', body: `evil upload ${i}\n` });
        });
        await race.finish([op]);
      });
    },
  );
});
