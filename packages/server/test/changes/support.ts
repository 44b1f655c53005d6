/** Helpers of the change-tracking tests: exec through the API and the namespace's events, oldest first. */
import { api, type StartedServer } from '../../../../test/helpers/server.js';

export interface Envelope {
  id: string;
  type: string;
  namespace: string | null;
  created_at: string;
  data: Record<string, unknown>;
}

export function client(server: StartedServer, namespace: string) {
  const ns = api(server, server.runtimeKey, namespace);
  const ws = api(server, server.adminKey);
  return {
    async exec(command: string): Promise<{ exit_code: number; stdout: string; stderr: string }> {
      const res = await ns('/v1/exec', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ command }),
      });
      if (res.status !== 200) throw new Error(`exec ${res.status}: ${await res.text()}`);
      return (await res.json()) as { exit_code: number; stdout: string; stderr: string };
    },
    async write(path: string, body: string): Promise<void> {
      const res = await ns(`/files/${path}`, { method: 'PUT', body });
      if (res.status >= 300) throw new Error(`write ${res.status}: ${await res.text()}`);
    },
    /** Every event of the namespace (filtered by `query`), oldest first. */
    async events(query = ''): Promise<Envelope[]> {
      const out: Envelope[] = [];
      let cursor: string | null = null;
      do {
        const q = new URLSearchParams(query);
        q.set('namespace', namespace);
        q.set('limit', '200');
        if (cursor) q.set('cursor', cursor);
        const res = await ws(`/v1/workspaces/${server.workspaceId}/events?${q}`);
        if (res.status !== 200) throw new Error(`events ${res.status}: ${await res.text()}`);
        const page = (await res.json()) as { events: Envelope[]; next_cursor: string | null };
        out.push(...page.events);
        cursor = page.next_cursor;
      } while (cursor);
      return out.reverse();
    },
    raw: ns,
    admin: ws,
  };
}
