/**
 * Regression: exec can create FIFOs and Unix sockets in its tree. Opening a
 * FIFO for reading blocks until a writer appears, so a files API that opens
 * without O_NONBLOCK parks a thread-pool thread forever (four of them and the
 * server stops doing any file I/O, and it cannot shut down). The API must
 * answer such paths at once with a 4xx.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { api, startServer, type StartedServer } from '../../../../test/helpers/server.js';

const hasBwrap = ['/usr/bin/bwrap', '/bin/bwrap', '/usr/local/bin/bwrap'].some((p) => existsSync(p));
const SKIP = 'SKIPPED: bubblewrap (bwrap) is not installed; run `npm run setup:toolbox`';

describe.skipIf(!hasBwrap)(`special files made by exec${hasBwrap ? '' : ` (${SKIP})`}`, () => {
  let server: StartedServer;
  let ns: ReturnType<typeof api>;

  beforeAll(async () => {
    server = await startServer();
    ns = api(server, server.runtimeKey, 'special');
    const res = await ns('/v1/exec', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        command: `mkfifo workspace/fifo && python3 -c "import socket; socket.socket(socket.AF_UNIX).bind('workspace/sock')" && ls -l workspace | grep -c -E "^[ps]"`,
      }),
    });
    expect(await res.json()).toMatchObject({ exit_code: 0, stdout: '2\n' });
  });

  afterAll(async () => {
    // A server stuck on a FIFO does not exit on SIGTERM: do not let that hang the suite.
    await Promise.race([server?.close(), new Promise((r) => setTimeout(r, 5000))]);
    if (server && server.proc.exitCode === null) await server.kill('SIGKILL');
  });

  for (const name of ['fifo', 'sock']) {
    for (const path of [`/files/${name}`, `/v1/files/content?path=workspace/${name}`]) {
      it(`GET ${path} answers a 4xx at once`, async () => {
        const res = await ns(path, { signal: AbortSignal.timeout(5000) });
        const body = (await res.json()) as { detail: string };
        expect(res.status, body.detail).toBeGreaterThanOrEqual(400);
        expect(res.status, body.detail).toBeLessThan(500);
        expect(typeof body.detail).toBe('string');
      });
    }
  }

  it('lists the special files and stays responsive', async () => {
    const res = await ns('/v1/files?path=workspace/', { signal: AbortSignal.timeout(5000) });
    expect(res.status).toBe(200);
    const { entries } = (await res.json()) as { entries: Array<{ name: string }> };
    expect(entries.map((e) => e.name).sort()).toEqual(['fifo', 'sock']);
  });
});
