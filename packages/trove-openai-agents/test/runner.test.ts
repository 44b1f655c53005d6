/**
 * The adapters as the SDK drives them: a real `Runner` with `shellTool` and `applyPatchTool`, and a scripted
 * model (no network) whose turns are the shell and apply_patch calls a model would make.
 */
import { describe, expect, it } from 'vitest';
import {
  Agent,
  Runner,
  Usage,
  applyPatchTool,
  setTracingDisabled,
  shellTool,
  type AgentOutputItem,
  type Model,
  type ModelRequest,
  type ModelResponse,
} from '@openai/agents-core';
import { TroveEditor, TroveShell } from '../src/index.js';
import { freshNamespace, useTrove } from '../../../test/helpers/trove-session.js';

const t = useTrove();
setTracingDisabled(true);

/** A model that answers each turn with the next scripted output. */
class ScriptedModel implements Model {
  readonly requests: ModelRequest[] = [];
  constructor(private readonly turns: AgentOutputItem[][]) {}
  async getResponse(request: ModelRequest): Promise<ModelResponse> {
    this.requests.push(request);
    const output = this.turns.shift();
    if (!output) throw new Error('the script has no more turns');
    return { usage: new Usage(), output, responseId: `resp-${this.requests.length}` };
  }
  getStreamedResponse(): AsyncIterable<never> {
    throw new Error('not used');
  }
}

describe('Runner with TroveShell and TroveEditor', () => {
  it('creates, runs, patches and deletes files in the namespace', async () => {
    const client = t.client.withNamespace(freshNamespace('runner'));
    const model = new ScriptedModel([
      [
        {
          type: 'apply_patch_call',
          callId: 'p1',
          status: 'completed',
          operation: { type: 'create_file', path: 'hello.py', diff: '+print("hi")\n+print("there")\n' },
        },
      ],
      [
        {
          type: 'shell_call',
          callId: 's1',
          status: 'completed',
          action: { commands: ['python3 hello.py', 'ls; exit 2'], timeoutMs: 10_000 },
        },
      ],
      [
        {
          type: 'apply_patch_call',
          callId: 'p2',
          status: 'completed',
          operation: {
            type: 'update_file',
            path: 'hello.py',
            diff: '@@\n print("hi")\n-print("there")\n+print("world")\n',
          },
        },
      ],
      [
        {
          type: 'shell_call',
          callId: 's2',
          status: 'completed',
          action: { commands: ['python3 hello.py', 'sleep 30'], timeoutMs: 1000, maxOutputLength: 50 },
        },
      ],
      [
        {
          type: 'apply_patch_call',
          callId: 'p3',
          status: 'completed',
          operation: { type: 'update_file', path: 'nope.py', diff: '@@\n-a\n+b\n' },
        },
      ],
      [
        {
          type: 'apply_patch_call',
          callId: 'p4',
          status: 'completed',
          operation: { type: 'delete_file', path: 'hello.py' },
        },
      ],
      [
        {
          type: 'message',
          role: 'assistant',
          status: 'completed',
          content: [{ type: 'output_text', text: 'all done' }],
        },
      ],
    ]);
    const agent = new Agent({
      name: 'coder',
      model,
      tools: [shellTool({ shell: new TroveShell(client) }), applyPatchTool({ editor: new TroveEditor(client) })],
    });
    const result = await new Runner({ tracingDisabled: true }).run(agent, 'write and run a script');
    expect(result.finalOutput).toBe('all done');

    const outputs = new Map<string, Record<string, unknown>>();
    for (const item of result.newItems) {
      if (item.type === 'tool_call_output_item') {
        const raw = item.rawItem as Record<string, unknown> & { callId: string };
        outputs.set(raw.callId, raw);
      }
    }
    expect(outputs.get('p1')).toMatchObject({
      type: 'apply_patch_call_output',
      status: 'completed',
      output: 'Created hello.py',
    });
    expect(outputs.get('s1')).toMatchObject({
      type: 'shell_call_output',
      output: [
        { stdout: 'hi\nthere\n', stderr: '', outcome: { type: 'exit', exitCode: 0 } },
        { stdout: 'hello.py\n', stderr: '', outcome: { type: 'exit', exitCode: 2 } },
      ],
      providerData: { working_directory: '/home/agent/workspace' },
    });
    expect(outputs.get('p2')).toMatchObject({ status: 'completed', output: 'Updated hello.py' });
    expect(outputs.get('s2')).toMatchObject({
      maxOutputLength: 50,
      output: [
        { stdout: 'hi\nworld\n', outcome: { type: 'exit', exitCode: 0 } },
        { stdout: '', outcome: { type: 'timeout' } },
      ],
    });
    expect(outputs.get('p3')).toMatchObject({ status: 'failed', output: 'File not found: nope.py' });
    expect(outputs.get('p4')).toMatchObject({ status: 'completed', output: 'Deleted hello.py' });
    expect((await client.listDir()).entries).toEqual([]);
    // The model saw the shell output on its next turn.
    const secondInput = JSON.stringify(model.requests[2]!.input);
    expect(secondInput).toContain('hi\\nthere\\n');
  });
});
