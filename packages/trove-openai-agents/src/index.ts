/**
 * trove-openai-agents: the OpenAI Agents SDK's `Shell` and `Editor` over one Trove namespace.
 * @example
 * const client = new TroveClient({ apiKey, namespace: 'agent-1' });
 * const agent = new Agent({ tools: [shellTool({ shell: new TroveShell(client) }), applyPatchTool({ editor: new TroveEditor(client) })] });
 */
export { TroveShell, type TroveShellOptions } from './trove-shell.js';
export { TroveEditor } from './trove-editor.js';
export { WORKING_DIRECTORY, InvalidPathError } from './paths.js';
