/**
 * Race: recursive listings of `d` and of the namespace root while the tenant keeps exchanging `d` with a
 * symlink to a victim (harness.ts). A listing shows the namespace's own entries, never a victim's names or
 * sizes (every victim file is over 1000 bytes; the namespace's own are a few bytes).
 */
import { describe, it } from 'vitest';
import { startServer } from '../../../../../test/helpers/server.js';
import { ITERATIONS, raceServerOptions, raceTimeout, withRace, type Race } from './harness.js';

interface Listing {
  entries: Array<{ path: string; size_bytes: number | null }>;
}

async function list(race: Race, op: string, path: string): Promise<void> {
  const r = await race.request(op, `/v1/files?path=${encodeURIComponent(path)}&recursive=true`);
  if (r.status !== 200) return;
  for (const e of (JSON.parse(r.text) as Listing).entries) {
    if (e.size_bytes !== null && e.size_bytes >= 1000) {
      race.problem(
        `${op}: lists ${e.path} with ${e.size_bytes} bytes, a victim's file (the namespace's own are a few bytes)`,
      );
    }
  }
}

describe('race: recursive listings over a directory swapped with a symlink', () => {
  it(
    'GET /v1/files?path=workspace/d&recursive=true lists nothing outside the namespace',
    { timeout: raceTimeout() },
    async () => {
      await withRace(await startServer(raceServerOptions()), async (race) => {
        await race.startSandboxAttacker();
        await race.startHostAttacker();
        const op = 'GET /v1/files?path=workspace/d&recursive=true';
        await race.drive(ITERATIONS, 4, () => list(race, op, 'workspace/d'));
        await race.finish([op]);
      });
    },
  );

  it(
    'GET /v1/files?path=workspace/&recursive=true lists nothing outside the namespace',
    { timeout: raceTimeout() },
    async () => {
      await withRace(await startServer(raceServerOptions()), async (race) => {
        await race.startSandboxAttacker();
        await race.startHostAttacker();
        const op = 'GET /v1/files?path=workspace/&recursive=true';
        await race.drive(ITERATIONS, 4, () => list(race, op, 'workspace/'));
        await race.finish([op]);
      });
    },
  );
});
