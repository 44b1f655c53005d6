/**
 * Race: GET /files and GET /v1/files/content of `d/f` while the tenant keeps exchanging `d` with a symlink
 * to a victim whose `f` holds other content (harness.ts). A read answers the namespace's own file or an
 * error, never a victim's bytes.
 */
import { describe, it } from 'vitest';
import { startServer } from '../../../../../test/helpers/server.js';
import { ITERATIONS, raceServerOptions, raceTimeout, withRace } from './harness.js';

const OWN = 'evil f\n';

describe('race: reads under a directory swapped with a symlink', () => {
  it('GET /files/d/f reads nothing outside the namespace', { timeout: raceTimeout() }, async () => {
    await withRace(await startServer(raceServerOptions()), async (race) => {
      await race.startSandboxAttacker();
      await race.startHostAttacker();
      const op = 'GET /files/d/f';
      await race.drive(ITERATIONS, 4, async () => {
        const r = await race.request(op, '/files/d/f');
        if (r.status === 200 && r.text !== OWN)
          race.problem(`${op}: answered 200 with other bytes than d/f's: ${JSON.stringify(r.text.slice(0, 80))}`);
      });
      await race.finish([op]);
    });
  });

  it(
    'GET /v1/files/content?path=workspace/d/f reads nothing outside the namespace',
    { timeout: raceTimeout() },
    async () => {
      await withRace(await startServer(raceServerOptions()), async (race) => {
        await race.startSandboxAttacker();
        await race.startHostAttacker();
        const op = 'GET /v1/files/content?path=workspace/d/f';
        await race.drive(ITERATIONS, 4, async () => {
          const r = await race.request(op, `/v1/files/content?path=${encodeURIComponent('workspace/d/f')}`);
          if (r.status !== 200) return;
          const body = JSON.parse(r.text) as { content: unknown; size_bytes: unknown };
          if (body.content !== OWN || body.size_bytes !== OWN.length) {
            race.problem(`${op}: answered 200 with another file than d/f: ${r.text.slice(0, 160)}`);
          }
        });
        await race.finish([op]);
      });
    },
  );
});
