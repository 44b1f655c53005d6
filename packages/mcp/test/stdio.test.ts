/** The MCP SDK's own client against `trove mcp serve` (the built CLI) over stdio, with a real server behind it. */
import { beforeAll, describe, expect, it } from 'vitest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { cliBin } from '../../../test/helpers/server.js';
import { login, makeHome } from '../../cli/test/helpers/cli.js';
import { useServer } from '../../cli/test/helpers/session.js';
import { call, checkListings, EXPECTED_TOOLS, exerciseTools } from './helpers/exercise.js';

const session = useServer();
let home: string;

beforeAll(() => {
  home = makeHome();
});

async function connect(
  env: Record<string, string>,
): Promise<{ client: Client; stderr: () => string; transport: StdioClientTransport }> {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [cliBin, 'mcp', 'serve'],
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home, ...env },
    stderr: 'pipe',
  });
  let stderr = '';
  transport.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const client = new Client({ name: 'trove-test', version: '1.0.0' });
  await client.connect(transport);
  return { client, stderr: () => stderr, transport };
}

describe('trove mcp serve (stdio)', () => {
  it('lists the tools and prompt, and every tool works', async () => {
    const { client, stderr } = await connect({
      TROVE_API_KEY: session.server.runtimeKey,
      TROVE_BASE_URL: session.server.baseUrl,
      TROVE_NAMESPACE: 'mcp-stdio',
    });
    try {
      await checkListings(client);
      await exerciseTools(client);
      // The tools really acted on the namespace the environment named.
      const res = await fetch(`${session.server.baseUrl}/files/notes/hello.md`, {
        headers: { authorization: `Bearer ${session.server.runtimeKey}`, 'x-namespace': 'mcp-stdio' },
      });
      expect(await res.text()).toBe('hello');
      expect(stderr()).toContain('trove mcp: serving');
    } finally {
      await client.close();
    }
  });

  it('failures are tool results, not crashes: a bad key, then the server going away', async () => {
    const bad = await connect({
      TROVE_API_KEY: 'trove-sk-wrong',
      TROVE_BASE_URL: session.server.baseUrl,
      TROVE_NAMESPACE: 'x',
    });
    try {
      expect(await call(bad.client, 'trove_exec', { command: 'true' })).toEqual({
        text: 'trove error (HTTP 401): Invalid API key',
        isError: true,
      });
    } finally {
      await bad.client.close();
    }
    const down = await connect({
      TROVE_API_KEY: session.server.runtimeKey,
      TROVE_BASE_URL: 'http://127.0.0.1:9',
      TROVE_NAMESPACE: 'x',
    });
    try {
      const r = await call(down.client, 'trove_list', {});
      expect(r.isError).toBe(true);
      expect(r.text).toMatch(/^trove error: Connection error/);
      // Still serving after the failure.
      expect((await down.client.listTools()).tools.length).toBe(EXPECTED_TOOLS.length);
    } finally {
      await down.client.close();
    }
  });

  it('without TROVE_* variables it uses the active profile saved by `trove login`', async () => {
    const profileHome = makeHome();
    await login(profileHome, session.server.baseUrl, session.server.runtimeKey, ['-n', 'mcp-profile']);
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [cliBin, 'mcp', 'serve'],
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: profileHome },
      stderr: 'pipe',
    });
    const client = new Client({ name: 'trove-test', version: '1.0.0' });
    await client.connect(transport);
    try {
      expect(await call(client, 'trove_write', { path: 'from-profile.txt', content: 'p' })).toEqual({
        text: 'wrote workspace/from-profile.txt (1 bytes)',
        isError: false,
      });
    } finally {
      await client.close();
    }
    const res = await fetch(`${session.server.baseUrl}/files/from-profile.txt`, {
      headers: { authorization: `Bearer ${session.server.runtimeKey}`, 'x-namespace': 'mcp-profile' },
    });
    expect(await res.text()).toBe('p');
  });

  it('without credentials it exits 3 before speaking MCP', async () => {
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [cliBin, 'mcp', 'serve'],
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home },
      stderr: 'pipe',
    });
    let stderr = '';
    transport.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const client = new Client({ name: 'trove-test', version: '1.0.0' });
    await expect(client.connect(transport)).rejects.toThrow();
    expect(stderr).toContain('error: not logged in');
  });
});
