/**
 * `TroveSandbox`: deepagents' `SandboxBackendProtocolV2` over one Trove namespace.
 *
 * Files go through the files API (exact bytes, conditional writes); `execute` runs a background process so a
 * command gets its own time limit rather than the server's exec limit; `grep` and `glob` run `grep`/`find` in
 * the sandbox, because the files API's recursive listing stops at 1,000 entries. The agent's `/` is the
 * namespace root, and commands start in it (`workspace/` of the sandbox's home directory).
 */
import { randomBytes } from 'node:crypto';
import {
  applyGrepMaxCount,
  normalizeReadPagination,
  SandboxError,
  type DeleteResult,
  type EditResult,
  type ExecuteResponse,
  type FileData,
  type FileDownloadResponse,
  type FileInfo,
  type FileOperationError,
  type FileUploadResponse,
  type GlobResult,
  type GrepMatch,
  type GrepResult,
  type LsResult,
  type ReadRawResult,
  type ReadResult,
  type SandboxBackendProtocolV2,
  type WriteResult,
} from 'deepagents';
import {
  APIError,
  NotFoundError,
  PreconditionFailedError,
  TroveClient,
  type TroveAdminClient,
  type TroveClientOptions,
} from 'trove-sdk';
import { globToRegExp } from './glob.js';
import { isTextPath, mimeTypeOf } from './mime.js';
import {
  fromServerPath,
  InvalidPathError,
  shellQuote,
  toAgentPath,
  toNamespacePath,
  toSdkListPath,
  toSdkPath,
} from './paths.js';

/** What deepagents' own backends answer for an empty text file. */
const EMPTY_CONTENT_WARNING = 'System reminder: File exists but has empty contents';
/** Separates the shell's own output (an `init.sh` that prints) from what `grep`/`glob` parse. */
const MARKER = '__TROVE_DEEPAGENTS__';
/** Attempts of an edit whose file changed between its read and its conditional write. */
const EDIT_ATTEMPTS = 3;

/** Options of `new TroveSandbox()`. */
export interface TroveSandboxOptions {
  /** The client; its namespace is the sandbox unless `namespace` is given. */
  client: TroveClient;
  /** The namespace to work in (default: the client's). */
  namespace?: string;
  /** Wall-clock limit of one `execute` command in ms (default 120000, as deepagents' local shell backend). */
  timeoutMs?: number;
  /** `execute` output beyond this many characters is cut and reported as truncated (default 100000). */
  maxOutputChars?: number;
  /** Matches `grep` returns at most when the caller sets no `maxCount` (default 5000; more is `truncated`). */
  maxGrepMatches?: number;
  /** Entries `glob` examines at most (default 50000; more is `truncated`). */
  maxGlobEntries?: number;
  /** `close()` removes the namespace: with `adminClient` the namespace itself, else every file in it. */
  deleteOnClose?: boolean;
  /** An admin-scope client, used by `close()` to delete the namespace when `deleteOnClose` is set. */
  adminClient?: TroveAdminClient;
}

/** Options of `TroveSandbox.create()`. */
export interface TroveSandboxCreateOptions extends Omit<TroveSandboxOptions, 'client' | 'deleteOnClose'> {
  /** A client to use; otherwise one is made from `clientOptions` (and `TROVE_API_KEY`, `TROVE_BASE_URL`). */
  client?: TroveClient;
  /** Options of the client made when `client` is not given. */
  clientOptions?: TroveClientOptions;
  /** Files to put in the namespace before the sandbox is returned: agent path → text or bytes. */
  initialFiles?: Record<string, string | Uint8Array>;
  /** Default: true when the namespace was generated (no `namespace`, none on the client), else false. */
  deleteOnClose?: boolean;
}

/** Options of one `execute` call (deepagents calls it with the command alone). */
export interface TroveExecuteOptions {
  /** This command's wall-clock limit in ms, instead of the sandbox's `timeoutMs`. */
  timeoutMs?: number;
  /** Stops waiting for the command (it is then killed) and rejects. */
  signal?: AbortSignal;
}

/** A deepagents sandbox backend over one Trove namespace. */
export class TroveSandbox implements SandboxBackendProtocolV2 {
  /** The client bound to the sandbox's namespace. */
  readonly client: TroveClient;
  /** The namespace. */
  readonly namespace: string;

  readonly #timeoutMs: number;
  readonly #maxOutputChars: number;
  readonly #maxGrepMatches: number;
  readonly #maxGlobEntries: number;
  readonly #deleteOnClose: boolean;
  readonly #adminClient: TroveAdminClient | undefined;
  #running = true;

  constructor(options: TroveSandboxOptions) {
    const namespace = options.namespace ?? options.client.namespace;
    if (!namespace) {
      throw new SandboxError(
        'TroveSandbox needs a namespace: pass { namespace } or a client that has one',
        'NOT_INITIALIZED',
      );
    }
    this.client = options.namespace !== undefined ? options.client.withNamespace(namespace) : options.client;
    this.namespace = namespace;
    this.#timeoutMs = options.timeoutMs ?? 120_000;
    this.#maxOutputChars = options.maxOutputChars ?? 100_000;
    this.#maxGrepMatches = options.maxGrepMatches ?? 5_000;
    this.#maxGlobEntries = options.maxGlobEntries ?? 50_000;
    this.#deleteOnClose = options.deleteOnClose ?? false;
    this.#adminClient = options.adminClient;
  }

  /**
   * Makes a sandbox: the client's namespace, the one named, or a new `deepagents-<hex>` one, with `initialFiles`
   * written into it. Throws `SandboxError` (`FILE_OPERATION_FAILED`) when an initial file cannot be written.
   */
  static async create(options: TroveSandboxCreateOptions = {}): Promise<TroveSandbox> {
    const { client: given, clientOptions, initialFiles, deleteOnClose, ...rest } = options;
    const client = given ?? new TroveClient(clientOptions);
    let namespace = rest.namespace ?? client.namespace;
    if (!namespace) {
      // A namespace-scoped key works in its own namespace only.
      const me = await client.me();
      namespace = me.namespace ?? undefined;
    }
    const generated = namespace === undefined;
    namespace ??= 'deepagents-' + randomBytes(6).toString('hex');
    const sandbox = new TroveSandbox({ ...rest, client, namespace, deleteOnClose: deleteOnClose ?? generated });
    if (initialFiles) {
      const encoder = new TextEncoder();
      const files = Object.entries(initialFiles).map(
        ([path, content]) =>
          [path, typeof content === 'string' ? encoder.encode(content) : content] as [string, Uint8Array],
      );
      const results = await sandbox.uploadFiles(files);
      const failed = results.filter((r) => r.error !== null);
      if (failed.length > 0) {
        if (sandbox.#deleteOnClose) await sandbox.close().catch(() => {});
        throw new SandboxError(
          `Could not write initial files: ${failed.map((f) => `${f.path} (${f.error})`).join(', ')}`,
          'FILE_OPERATION_FAILED',
        );
      }
    }
    return sandbox;
  }

  /** The namespace: one sandbox per namespace. */
  get id(): string {
    return this.namespace;
  }

  /** False once `close()` was called. */
  get isRunning(): boolean {
    return this.#running;
  }

  /**
   * Runs `sh -c command` in the namespace directory (so relative paths agree with the file tools) and returns
   * stdout, then stderr with each line prefixed `[stderr] `, and the exit code. Past the time limit the
   * command is killed and `exitCode` is 124. A command whose process cannot be started is an `exitCode: 1`
   * result that says why.
   */
  async execute(command: string, options: TroveExecuteOptions = {}): Promise<ExecuteResponse> {
    this.#assertRunning();
    if (typeof command !== 'string' || command.trim() === '') {
      return { output: 'Error: Command must be a non-empty string.', exitCode: 1, truncated: false };
    }
    const timeoutMs = options.timeoutMs ?? this.#timeoutMs;
    let processId: string;
    try {
      const proc = await this.client.processes.start(`cd workspace || exit 1\n${command}`, {
        closeStdin: true,
        processTimeoutMs: timeoutMs,
        signal: options.signal,
      });
      processId = proc.processId;
    } catch (err) {
      if (options.signal?.aborted) throw err;
      return { output: `Error executing command: ${describe(err)}`, exitCode: 1, truncated: false };
    }
    const limit = this.#maxOutputChars;
    let stdout = '';
    let stderr = '';
    let truncated = false;
    try {
      for await (const event of this.client.processes.stream(processId, { signal: options.signal })) {
        if (event.type === 'exit') {
          const { exitCode, exitReason } = event.process;
          let output = combine(stdout, stderr);
          if (output.length > limit) {
            output = output.slice(0, limit) + `\n\n... Output truncated at ${limit} characters.`;
            truncated = true;
          }
          if (exitReason === 'timeout') {
            const note = `Error: Command timed out after ${(timeoutMs / 1000).toFixed(1)} seconds.`;
            return { output: output ? `${output.trimEnd()}\n${note}` : note, exitCode: 124, truncated };
          }
          return { output: output || '<no output>', exitCode: exitCode ?? null, truncated };
        }
        // Keep a little more than the limit of each stream; the rest is only drained.
        if (event.type === 'stdout') {
          if (stdout.length <= limit) stdout += event.text;
          else truncated = true;
        } else if (stderr.length <= limit) {
          stderr += event.text;
        } else {
          truncated = true;
        }
      }
      throw new SandboxError('The process output ended before the process did', 'COMMAND_FAILED');
    } catch (err) {
      // The caller stopped waiting: the process must not outlive the call.
      await this.client.processes.signal(processId, 'SIGKILL').catch(() => {});
      throw err;
    }
  }

  /** Writes each file (parents created, existing files replaced); one result per file, in order. */
  async uploadFiles(files: Array<[string, Uint8Array]>): Promise<FileUploadResponse[]> {
    this.#assertRunning();
    const results: FileUploadResponse[] = [];
    for (const [path, content] of files) {
      try {
        const rel = toNamespacePath(path);
        if (rel === '') {
          results.push({ path, error: 'is_directory' });
          continue;
        }
        await this.client.upload(toSdkPath(rel), content);
        results.push({ path, error: null });
      } catch (err) {
        results.push({ path, error: fileError(err) });
      }
    }
    return results;
  }

  /**
   * Reads each file's exact bytes; one result per path, in order. A file larger than the server's read cap
   * (100 MiB by default) is reported as `permission_denied` rather than returned cut short.
   */
  async downloadFiles(paths: string[]): Promise<FileDownloadResponse[]> {
    this.#assertRunning();
    const results: FileDownloadResponse[] = [];
    for (const path of paths) {
      try {
        const rel = toNamespacePath(path);
        if (rel === '') {
          results.push({ path, content: null, error: 'is_directory' });
          continue;
        }
        const file = await this.client.readBytesFull(toSdkPath(rel));
        if (file.truncated) results.push({ path, content: null, error: 'permission_denied' });
        else results.push({ path, content: file.content, error: null });
      } catch (err) {
        results.push({ path, content: null, error: fileError(err) });
      }
    }
    return results;
  }

  /** Lists a directory: directories (path ending in `/`) first, then files, alphabetical. */
  async ls(path: string): Promise<LsResult> {
    this.#assertRunning();
    try {
      const rel = toNamespacePath(path);
      const listing = await this.client.listDir(toSdkListPath(rel));
      const files: FileInfo[] = listing.entries.map((e) => ({
        path: fromServerPath(e.path) + (e.isDir ? '/' : ''),
        is_dir: e.isDir,
        size: e.sizeBytes ?? 0,
        modified_at: e.modifiedAt,
      }));
      return { files };
    } catch (err) {
      if (isCode(err, 'path_not_found')) return { error: `Directory '${path}' not found` };
      if (isCode(err, 'not_a_directory')) return { error: `'${path}' is not a directory` };
      return { error: `Error listing '${path}': ${describe(err)}` };
    }
  }

  /**
   * Reads lines `offset` to `offset + limit` of a text file (0-indexed), with the pagination fields; a binary
   * file (by extension, as deepagents decides) comes back whole as bytes.
   */
  async read(filePath: string, offset = 0, limit = 500): Promise<ReadResult> {
    this.#assertRunning();
    const mimeType = mimeTypeOf(filePath);
    let content: string | Uint8Array;
    try {
      content = await this.#readContent(filePath);
    } catch (err) {
      return { error: readError(filePath, err) };
    }
    if (typeof content !== 'string') return { content, mimeType };
    if (content === '' || content.trim() === '') return { content: EMPTY_CONTENT_WARNING, mimeType };
    const window = normalizeReadPagination(offset, limit);
    const lines = content.split('\n');
    const totalLines = lines[lines.length - 1] === '' ? lines.length - 1 : lines.length;
    if (window.offset >= totalLines) {
      return { error: `Line offset ${window.offset} exceeds file length (${totalLines} lines)` };
    }
    const selected = lines.slice(window.offset, Math.min(window.offset + window.limit, lines.length));
    if (selected.length === 0 || window.limit === 0) return { content: selected.join('\n'), mimeType };
    const endLine = Math.min(window.offset + window.limit, totalLines);
    return {
      content: selected.join('\n'),
      mimeType,
      totalLines,
      startLine: window.offset + 1,
      endLine,
      ...(endLine < totalLines ? { nextOffset: endLine } : {}),
    };
  }

  /** Reads a whole file as deepagents' `FileData` (text, or bytes for binary extensions). */
  async readRaw(filePath: string): Promise<ReadRawResult> {
    this.#assertRunning();
    try {
      const rel = toNamespacePath(filePath);
      const [content, info] = await Promise.all([
        this.#readContent(filePath),
        this.client.readFile(toSdkListPath(rel)),
      ]);
      const data: FileData = {
        content,
        mimeType: mimeTypeOf(filePath),
        created_at: info.modifiedAt,
        modified_at: info.modifiedAt,
      };
      return { data };
    } catch (err) {
      return { error: readError(filePath, err) };
    }
  }

  /**
   * Writes a file, creating it (and its parents) or replacing it. For a binary extension (`.png`, `.pdf`, …)
   * the content is base64, as deepagents' `write_file` sends it.
   */
  async write(filePath: string, content: string): Promise<WriteResult> {
    this.#assertRunning();
    try {
      const rel = toNamespacePath(filePath);
      if (rel === '') return { error: `Cannot write to '${filePath}': it is the root directory` };
      if (isTextPath(filePath)) await this.client.write(toSdkPath(rel), content);
      else await this.client.upload(toSdkPath(rel), Buffer.from(content, 'base64'));
      return { path: filePath, filesUpdate: null };
    } catch (err) {
      if (isCode(err, 'path_is_directory')) return { error: `Cannot write to '${filePath}': it is a directory` };
      return { error: `Error writing file '${filePath}': ${describe(err)}` };
    }
  }

  /**
   * Replaces `oldString` with `newString` (every occurrence with `replaceAll`, else exactly one must exist).
   * The write is conditional on the version read (`ifMatch`): when the file changed in between, the edit is
   * made again on the new content, up to 3 times, so a concurrent change is never overwritten.
   */
  async edit(filePath: string, oldString: string, newString: string, replaceAll = false): Promise<EditResult> {
    this.#assertRunning();
    let rel: string;
    try {
      rel = toNamespacePath(filePath);
    } catch (err) {
      return { error: `Error editing file '${filePath}': ${describe(err)}` };
    }
    for (let attempt = 1; ; attempt++) {
      let file;
      try {
        file = await this.client.readBytesFull(toSdkPath(rel));
      } catch (err) {
        if (isCode(err, 'path_not_found') || isCode(err, 'path_is_directory')) {
          return { error: `Error: File '${filePath}' not found` };
        }
        return { error: `Error editing file '${filePath}': ${describe(err)}` };
      }
      if (file.truncated) return { error: `Error: File '${filePath}' is too large to edit` };
      const text = new TextDecoder('utf-8', { ignoreBOM: true }).decode(file.content);
      const replaced = replaceString(text, oldString, newString, replaceAll);
      if (typeof replaced === 'string') return { error: replaced };
      const [newText, occurrences] = replaced;
      if (newText === text) return { path: filePath, filesUpdate: null, occurrences };
      try {
        await this.client.write(toSdkPath(rel), newText, file.etag ? { ifMatch: file.etag } : {});
        return { path: filePath, filesUpdate: null, occurrences };
      } catch (err) {
        if (err instanceof PreconditionFailedError && attempt < EDIT_ATTEMPTS) continue;
        if (err instanceof PreconditionFailedError) {
          return { error: `Error editing file '${filePath}': it kept changing while being edited; read it again` };
        }
        return { error: `Error editing file '${filePath}': ${describe(err)}` };
      }
    }
  }

  /** Deletes a file or a directory with everything in it; `/` empties the namespace. */
  async delete(filePath: string): Promise<DeleteResult> {
    this.#assertRunning();
    try {
      const rel = toNamespacePath(filePath);
      if (rel === '') {
        await this.#emptyNamespace();
      } else {
        await this.client.delete(toSdkPath(rel));
      }
      return { path: filePath, filesUpdate: null };
    } catch (err) {
      if (isCode(err, 'path_not_found')) return { error: `Error: '${filePath}' not found` };
      return { error: `Error deleting '${filePath}': ${describe(err)}` };
    }
  }

  /**
   * Searches text files under `path` (a directory or one file) for the literal `pattern`, optionally only
   * files whose name matches `glob` (`*.py`). Binary files are skipped. At most `maxCount` matches (else the
   * sandbox's `maxGrepMatches`); `truncated` says more existed.
   */
  async grep(
    pattern: string,
    path: string | null = '/',
    glob: string | null = null,
    maxCount: number | null = null,
  ): Promise<GrepResult> {
    this.#assertRunning();
    if (typeof pattern !== 'string' || pattern === '') return { error: 'The pattern must be a non-empty string' };
    let rel: string;
    try {
      rel = toNamespacePath(path ?? '/');
    } catch (err) {
      return { error: describe(err) };
    }
    const cap = maxCount ?? this.#maxGrepMatches;
    const target = rel === '' ? '.' : rel;
    const include = glob ? ` --include=${shellQuote(glob)}` : '';
    // -Z ends each file name with NUL, so names with ':' or unicode parse exactly; -I skips binary files.
    const command = [
      'cd workspace || exit 2',
      `[ -e ${shellQuote(target)} ] || exit 3`,
      `printf '${MARKER}\\0'`,
      `grep -rHnIZFs${include} -e ${shellQuote(pattern)} -- ${shellQuote(target)} | head -n ${cap + 1}`,
    ].join('\n');
    let stdout: string;
    try {
      const result = await this.client.execDetailed(command);
      if (result.exitCode === 3) return { error: `Path '${path}' not found` };
      if (!result.stdout.includes(MARKER + '\0'))
        return { error: `grep failed: ${result.stderr.trim() || `exit ${result.exitCode}`}` };
      stdout = result.stdout.slice(result.stdout.indexOf(MARKER + '\0') + MARKER.length + 1);
    } catch (err) {
      return { error: `grep failed: ${describe(err)}` };
    }
    const matches: GrepMatch[] = [];
    for (const line of stdout.split('\n')) {
      const nul = line.indexOf('\0');
      if (nul === -1) continue;
      const file = line.slice(0, nul);
      const rest = line.slice(nul + 1);
      const colon = rest.indexOf(':');
      const lineNo = Number(rest.slice(0, colon));
      if (colon === -1 || !Number.isInteger(lineNo)) continue;
      const agentPath = toAgentPath(file.replace(/^\.\//, ''));
      if (!isTextPath(agentPath)) continue;
      matches.push({ path: agentPath, line: lineNo, text: rest.slice(colon + 1) });
    }
    return applyGrepMaxCount({ result: { matches }, maxCount: cap });
  }

  /**
   * Files and directories under `path` whose path relative to it matches `pattern` (`**∕*.ts`, `*.{js,ts}`),
   * as agent paths sorted alphabetically; directories end in `/`.
   */
  async glob(pattern: string, path = '/'): Promise<GlobResult> {
    this.#assertRunning();
    let rel: string;
    let regex: RegExp;
    try {
      rel = toNamespacePath(path);
      regex = globToRegExp(pattern.replace(/^\/+/, ''));
    } catch (err) {
      return { error: describe(err) };
    }
    const target = rel === '' ? '.' : rel;
    const cap = this.#maxGlobEntries;
    const command = [
      'cd workspace || exit 2',
      `[ -d ${shellQuote(target)} ] || exit 3`,
      `printf '${MARKER}\\0'`,
      `find ${shellQuote(target)} -mindepth 1 -printf '%y\\t%s\\t%T@\\t%P\\0' 2>/dev/null | head -z -n ${cap + 1}`,
    ].join('\n');
    let records: string[];
    try {
      const result = await this.client.execDetailed(command);
      if (result.exitCode === 3) return { error: `Directory '${path}' not found` };
      const start = result.stdout.indexOf(MARKER + '\0');
      if (start === -1) return { error: `glob failed: ${result.stderr.trim() || `exit ${result.exitCode}`}` };
      records = result.stdout
        .slice(start + MARKER.length + 1)
        .split('\0')
        .filter(Boolean);
    } catch (err) {
      return { error: `glob failed: ${describe(err)}` };
    }
    const truncated = records.length > cap;
    const base = rel === '' ? '' : rel + '/';
    const files: FileInfo[] = [];
    for (const record of records.slice(0, cap)) {
      const [type, size, mtime, ...name] = record.split('\t');
      const relative = name.join('\t');
      if (!relative || !regex.test(relative)) continue;
      const isDir = type === 'd';
      files.push({
        path: toAgentPath(base + relative) + (isDir ? '/' : ''),
        is_dir: isDir,
        size: isDir ? 0 : Number(size),
        modified_at: new Date(Number(mtime) * 1000).toISOString(),
      });
    }
    files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    return truncated ? { files, truncated } : { files };
  }

  /**
   * Ends the sandbox: kills the namespace's running processes and, with `deleteOnClose`, deletes the namespace
   * (with `adminClient`) or every file in it. Later calls throw `SandboxError` (`NOT_INITIALIZED`).
   */
  async close(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    const running = await this.client.processes.list({ state: 'running' }).catch(() => []);
    await Promise.all(running.map((p) => this.client.processes.signal(p.processId, 'SIGKILL').catch(() => {})));
    if (!this.#deleteOnClose) return;
    if (this.#adminClient) {
      await this.#adminClient.namespaces.delete(this.namespace).catch((err: unknown) => {
        // Nothing was ever written: the namespace does not exist, which is what close wanted.
        if (!isCode(err, 'namespace_not_found')) throw err;
      });
    } else {
      await this.#emptyNamespace();
    }
  }

  /** Text (UTF-8) for text paths, exact bytes for binary ones. */
  async #readContent(filePath: string): Promise<string | Uint8Array> {
    const rel = toNamespacePath(filePath);
    if (rel === '') throw new InvalidPathError(`'${filePath}' is a directory`);
    const file = await this.client.readBytesFull(toSdkPath(rel));
    if (file.truncated) throw new InvalidPathError(`'${filePath}' is larger than the server's read limit`);
    return isTextPath(filePath) ? new TextDecoder('utf-8', { ignoreBOM: true }).decode(file.content) : file.content;
  }

  async #emptyNamespace(): Promise<void> {
    const listing = await this.client.listDir(toSdkListPath(''));
    for (const entry of listing.entries) {
      await this.client.delete(toSdkPath(toNamespacePath(fromServerPath(entry.path)))).catch((err: unknown) => {
        if (!(err instanceof NotFoundError)) throw err;
      });
    }
  }

  #assertRunning(): void {
    if (!this.#running) throw new SandboxError(`Sandbox ${this.namespace} is closed`, 'NOT_INITIALIZED');
  }
}

/** stdout, then stderr with each line prefixed `[stderr] ` (deepagents' local shell backend does the same). */
function combine(stdout: string, stderr: string): string {
  const parts: string[] = [];
  if (stdout) parts.push(stdout.endsWith('\n') ? stdout.slice(0, -1) : stdout);
  if (stderr)
    parts.push(
      ...stderr
        .replace(/\n$/, '')
        .split('\n')
        .map((line) => `[stderr] ${line}`),
    );
  return parts.join('\n');
}

/** deepagents' string replacement rules (the same messages as its filesystem backend). */
function replaceString(
  content: string,
  oldString: string,
  newString: string,
  replaceAll: boolean,
): [string, number] | string {
  if (content === '' && oldString === '') return [newString, newString === '' ? 0 : 1];
  if (oldString === '') return 'Error: oldString cannot be empty when file has content';
  const occurrences = content.split(oldString).length - 1;
  if (occurrences === 0) return `Error: String not found in file: '${oldString}'`;
  if (occurrences > 1 && !replaceAll) {
    return `Error: String '${oldString}' has multiple occurrences (appears ${occurrences} times) in file. Use replace_all=True to replace all instances, or provide a more specific string with surrounding context.`;
  }
  return [content.split(oldString).join(newString), occurrences];
}

function isCode(err: unknown, code: string): boolean {
  return err instanceof APIError && err.code === code;
}

/** The protocol's error code for a failed upload or download. */
function fileError(err: unknown): FileOperationError {
  if (err instanceof InvalidPathError) return 'invalid_path';
  if (!(err instanceof APIError)) throw err;
  switch (err.code) {
    case 'path_not_found':
      return 'file_not_found';
    case 'path_is_directory':
    case 'path_is_root':
      return 'is_directory';
    case 'path_invalid':
    case 'path_outside_namespace':
    case 'not_a_directory':
      return 'invalid_path';
    default:
      // forbidden, quota_exceeded, payload_too_large, …: the server refused this file.
      return 'permission_denied';
  }
}

function readError(filePath: string, err: unknown): string {
  if (isCode(err, 'path_not_found') || isCode(err, 'path_is_directory')) return `File '${filePath}' not found`;
  return `Error reading file '${filePath}': ${describe(err)}`;
}

function describe(err: unknown): string {
  if (err instanceof APIError) return err.detail ?? err.message;
  return err instanceof Error ? err.message : String(err);
}
