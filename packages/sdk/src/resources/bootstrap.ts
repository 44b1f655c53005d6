/**
 * `bootstrap()`: what an agent should know about its namespace on its first turn,
 * gathered with four read-only calls (no exec, so it works without a sandbox).
 */
import type { RequestOptions, TroveClient } from '../client.js';
import { NotFoundError } from '../errors.js';
import type { FileEntry } from '../types.js';

/** Path of the agent notes file inside the namespace. */
export const AGENT_NOTES_PATH = '.trove/agent.md';
/** How many recent files `bootstrap()` reports. */
const RECENT_FILES = 10;
/** Notes and init script longer than this are cut in the prompt block. */
const PROMPT_TEXT_LIMIT = 4000;

/** A namespace summary from `bootstrap()`. Files under `.trove/` are reported separately, not counted. */
export class WorkspaceSummary {
  /** The namespace summarised (`null` when the server did not say). */
  readonly namespace: string | null;
  /** Files in the namespace (outside `.trove/`). */
  readonly fileCount: number;
  /** True when the namespace has more entries than one listing returns (1,000), so `fileCount` is a lower bound. */
  readonly fileCountTruncated: boolean;
  /** Up to 10 files, most recently modified first. */
  readonly recentFiles: FileEntry[];
  /** Contents of `.trove/init.sh`, or `null`. */
  readonly initScript: string | null;
  /** Contents of `.trove/agent.md`, or `null`. */
  readonly agentNotes: string | null;

  /** @internal */
  constructor(init: {
    namespace: string | null;
    fileCount: number;
    fileCountTruncated: boolean;
    recentFiles: FileEntry[];
    initScript: string | null;
    agentNotes: string | null;
  }) {
    this.namespace = init.namespace;
    this.fileCount = init.fileCount;
    this.fileCountTruncated = init.fileCountTruncated;
    this.recentFiles = init.recentFiles;
    this.initScript = init.initScript;
    this.agentNotes = init.agentNotes;
  }

  /** A block of text to put in an agent's system prompt (or first message). */
  asSystemPromptBlock(): string {
    const lines: string[] = [];
    lines.push(this.namespace ? `<trove_workspace namespace="${this.namespace}">` : '<trove_workspace>');
    lines.push(
      'You have a persistent POSIX filesystem. Commands run with `sh -c` in a directory containing `workspace/`; ' +
        'only files under `workspace/` persist between commands.',
    );
    const count = `${this.fileCount}${this.fileCountTruncated ? '+' : ''}`;
    if (this.fileCount === 0) lines.push('The workspace is empty.');
    else {
      lines.push(`Files: ${count}. Most recently modified:`);
      for (const f of this.recentFiles) lines.push(`- ${f.path} (${formatSize(f.sizeBytes ?? 0)}, ${f.modifiedAt})`);
    }
    if (this.initScript !== null) {
      lines.push('Init script (workspace/.trove/init.sh, sourced before every command):');
      lines.push('<init_script>', clip(this.initScript), '</init_script>');
    }
    if (this.agentNotes !== null) {
      lines.push('Notes left for you (workspace/.trove/agent.md):');
      lines.push('<notes>', clip(this.agentNotes), '</notes>');
    }
    lines.push('</trove_workspace>');
    return lines.join('\n');
  }
}

/** @internal Gathers the summary for `TroveClient.bootstrap()`. */
export async function bootstrapWorkspace(client: TroveClient, options?: RequestOptions): Promise<WorkspaceSummary> {
  const orNull = async (p: Promise<string>): Promise<string | null> => {
    try {
      return await p;
    } catch (err) {
      if (err instanceof NotFoundError) return null;
      throw err;
    }
  };
  const [listing, initScript, agentNotes, namespace] = await Promise.all([
    client.listDir('workspace/', { ...options, recursive: true }),
    client.getInit(options),
    orNull(client.readText(AGENT_NOTES_PATH, options)),
    client.namespace !== undefined ? Promise.resolve(client.namespace) : client.me(options).then((m) => m.namespace),
  ]);
  const files = listing.entries.filter((e) => !e.isDir && !e.path.startsWith('workspace/.trove/'));
  const recentFiles = [...files]
    .sort((a, b) =>
      a.modifiedAt === b.modifiedAt ? a.path.localeCompare(b.path) : a.modifiedAt < b.modifiedAt ? 1 : -1,
    )
    .slice(0, RECENT_FILES);
  return new WorkspaceSummary({
    namespace,
    fileCount: files.length,
    fileCountTruncated: listing.truncated,
    recentFiles,
    initScript,
    agentNotes,
  });
}

function clip(text: string): string {
  const t = text.trimEnd();
  return t.length > PROMPT_TEXT_LIMIT
    ? `${t.slice(0, PROMPT_TEXT_LIMIT)}\n… (${t.length - PROMPT_TEXT_LIMIT} more characters)`
    : t;
}

function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 ** 2) return `${(bytes / 1024).toFixed(1)} KiB`;
  if (bytes < 1024 ** 3) return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
  return `${(bytes / 1024 ** 3).toFixed(1)} GiB`;
}
