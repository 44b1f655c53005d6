/**
 * A deep agent with the sandbox as its backend, driven by a scripted model (no network): deepagents' own
 * tools (write_file, execute, read_file, edit_file, ls, glob, grep) call the backend as they would for a
 * real model, and their answers and effects are checked.
 */
import { describe, expect, it } from 'vitest';
import { createDeepAgent } from 'deepagents';
import { AIMessage, ToolMessage, type BaseMessage } from '@langchain/core/messages';
import { fakeModel } from '@langchain/core/testing';
import { TroveSandbox } from '../src/index.js';
import { freshNamespace, useTrove } from '../../../test/helpers/trove-session.js';

const t = useTrove();

function toolResults(messages: BaseMessage[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of messages) {
    if (ToolMessage.isInstance(m)) {
      const content =
        typeof m.content === 'string'
          ? m.content
          : m.content
              .map((block) => ('text' in block && typeof block.text === 'string' ? block.text : JSON.stringify(block)))
              .join('\n');
      out[m.tool_call_id] = content;
    }
  }
  return out;
}

describe('createDeepAgent({ backend: TroveSandbox })', () => {
  it("runs deepagents' file and shell tools against the namespace", async () => {
    const sandbox = await TroveSandbox.create({ client: t.client, namespace: freshNamespace('agent') });
    const model = fakeModel()
      .respondWithTools([
        { id: 'w', name: 'write_file', args: { file_path: '/app/main.py', content: 'print("hello from trove")\n' } },
      ])
      .respondWithTools([{ id: 'x', name: 'execute', args: { command: 'python3 app/main.py && exit 3' } }])
      .respondWithTools([
        { id: 'e', name: 'edit_file', args: { file_path: '/app/main.py', old_string: 'hello', new_string: 'bye' } },
      ])
      .respondWithTools([
        { id: 'r', name: 'read_file', args: { file_path: '/app/main.py' } },
        { id: 'l', name: 'ls', args: { path: '/app' } },
        { id: 'g', name: 'glob', args: { pattern: '**/*.py' } },
        { id: 'q', name: 'grep', args: { pattern: 'bye', output_mode: 'content' } },
      ])
      .respond(new AIMessage('done'));
    const agent = createDeepAgent({ model, backend: sandbox });
    const result = await agent.invoke({ messages: [{ role: 'user', content: 'go' }] });
    const results = toolResults(result.messages);

    expect(results.w).toContain("Successfully wrote to '/app/main.py'");
    expect(results.x).toContain('hello from trove');
    expect(results.x).toContain('[Command failed with exit code 3]');
    expect(results.e).toContain('/app/main.py');
    expect(results.r).toContain('print("bye from trove")');
    expect(results.l).toContain('/app/main.py');
    expect(results.g).toContain('/app/main.py');
    expect(results.q).toContain('/app/main.py');
    expect(results.q).toContain('bye from trove');
    expect(await sandbox.client.readText('app/main.py')).toBe('print("bye from trove")\n');
    expect(result.messages.at(-1)!.content).toBe('done');
  });
});
