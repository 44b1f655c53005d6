/**
 * `TroveEditor`: the OpenAI Agents SDK's `Editor` (what `applyPatchTool({ editor })` calls) over one Trove
 * namespace. The model's V4A diffs are applied with the SDK's own `applyDiff`; an update is written only if the
 * file is still the version that was read (`ifMatch`), and is made again on the new content when it is not.
 */
import { applyDiff, type ApplyPatchOperation, type ApplyPatchResult, type Editor } from '@openai/agents-core';
import { APIError, PreconditionFailedError, TroveError, type TroveClient } from 'trove-sdk';
import { InvalidPathError, toNamespacePath, toSdkPath } from './paths.js';

type CreateFile = Extract<ApplyPatchOperation, { type: 'create_file' }>;
type UpdateFile = Extract<ApplyPatchOperation, { type: 'update_file' }>;
type DeleteFile = Extract<ApplyPatchOperation, { type: 'delete_file' }>;

/** Attempts of an update whose file changed between its read and its conditional write. */
const UPDATE_ATTEMPTS = 3;

/** Applies the model's file patches in a Trove namespace. */
export class TroveEditor implements Editor {
  /** `client` is bound to the namespace (`new TroveClient({ namespace })` or `client.withNamespace(ns)`). */
  constructor(readonly client: TroveClient) {}

  /** Creates (or replaces) a file from a create-mode diff (every line `+`); parent directories are made. */
  async createFile(operation: CreateFile): Promise<ApplyPatchResult> {
    return this.#failOnExpected(operation.path, async () => {
      const rel = toNamespacePath(operation.path);
      const content = applyDiff('', operation.diff, 'create');
      await this.client.write(toSdkPath(rel), content);
      return { status: 'completed', output: `Created ${operation.path}` };
    });
  }

  /**
   * Patches an existing file; with `moveTo`, the patched file is written there and the original removed.
   * Fails (without writing) when the file is missing or the diff's context is not found in it.
   */
  async updateFile(operation: UpdateFile): Promise<ApplyPatchResult> {
    return this.#failOnExpected(operation.path, async () => {
      const rel = toNamespacePath(operation.path);
      const target = operation.moveTo !== undefined ? toNamespacePath(operation.moveTo) : rel;
      for (let attempt = 1; ; attempt++) {
        const file = await this.client.readBytesFull(toSdkPath(rel));
        if (file.truncated) throw new InvalidPathError(`${operation.path} is larger than the server's read limit`);
        const original = new TextDecoder('utf-8', { ignoreBOM: true }).decode(file.content);
        const patched = applyDiff(original, operation.diff);
        if (target !== rel) {
          await this.client.write(toSdkPath(target), patched);
          await this.client.delete(toSdkPath(rel));
          return { status: 'completed', output: `Updated ${operation.path} and moved it to ${operation.moveTo}` };
        }
        try {
          await this.client.write(toSdkPath(rel), patched, file.etag ? { ifMatch: file.etag } : {});
          return { status: 'completed', output: `Updated ${operation.path}` };
        } catch (err) {
          // Someone else changed the file since it was read: apply the diff to what is there now.
          if (err instanceof PreconditionFailedError && attempt < UPDATE_ATTEMPTS) continue;
          throw err;
        }
      }
    });
  }

  /** Deletes a file. */
  async deleteFile(operation: DeleteFile): Promise<ApplyPatchResult> {
    return this.#failOnExpected(operation.path, async () => {
      await this.client.delete(toSdkPath(toNamespacePath(operation.path)));
      return { status: 'completed', output: `Deleted ${operation.path}` };
    });
  }

  /**
   * Turns the failures a model can cause (a missing file, a diff that does not apply, a bad path) into a
   * `failed` result it can read; connection failures and server errors are thrown (the SDK reports those too).
   */
  async #failOnExpected(path: string, op: () => Promise<ApplyPatchResult>): Promise<ApplyPatchResult> {
    try {
      return await op();
    } catch (err) {
      if (err instanceof InvalidPathError) return { status: 'failed', output: err.message };
      if (err instanceof APIError && err.code === 'path_not_found')
        return { status: 'failed', output: `File not found: ${path}` };
      if (err instanceof APIError && err.status < 500)
        return { status: 'failed', output: `${path}: ${err.detail ?? err.message}` };
      if (err instanceof TroveError) throw err;
      // Anything else is applyDiff's: the diff does not fit the file.
      return {
        status: 'failed',
        output: `Could not apply the diff to ${path}: ${(err as Error)?.message ?? String(err)}`,
      };
    }
  }
}
