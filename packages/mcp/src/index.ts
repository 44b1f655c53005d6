/**
 * trove-mcp: Trove's MCP tools (`trove_exec`, `trove_read`, `trove_write`, `trove_put_base64`,
 * `trove_bootstrap`, `trove_list`, `trove_delete`, `trove_snapshot`, `trove_restore`,
 * `trove_process_start`, `trove_process_output`, `trove_process_kill`) and the `trove_orient`
 * prompt, for any MCP transport.
 */
export {
  createTroveMcpServer,
  decodeBase64,
  MCP_SERVER_VERSION,
  TOOL_NAMES,
  PROMPT_NAMES,
  type TroveMcpServerOptions,
} from './server.js';
export { serveStdio, type ServeStdioOptions } from './stdio.js';
export { formatExecResult, formatError, formatProcessOutput, formatProcessState, MAX_TOOL_OUTPUT } from './format.js';
export { serverInstructions } from './instructions.js';
