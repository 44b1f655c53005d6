/** The namespace's `.trove/init.sh`, which the server sources before every `/v1/exec` command. */
import type { RequestOptions } from '../client.js';
import { NotFoundError } from '../errors.js';
import type { WriteResult } from '../types.js';
import type { Files } from './files.js';

/** Path of the init script inside the namespace. */
export const INIT_SCRIPT_PATH = '.trove/init.sh';

/** `setInit` / `getInit` / `clearInit`. */
export class InitScript {
  constructor(private readonly files: Files) {}

  set(script: string, options?: RequestOptions): Promise<WriteResult> {
    return this.files.write(INIT_SCRIPT_PATH, script, options);
  }

  async get(options?: RequestOptions): Promise<string | null> {
    try {
      const { content } = await this.files.readBytesFull(INIT_SCRIPT_PATH, options);
      return new TextDecoder('utf-8', { ignoreBOM: true }).decode(content);
    } catch (err) {
      if (err instanceof NotFoundError) return null;
      throw err;
    }
  }

  async clear(options?: RequestOptions): Promise<boolean> {
    try {
      await this.files.delete(INIT_SCRIPT_PATH, options);
      return true;
    } catch (err) {
      if (err instanceof NotFoundError) return false;
      throw err;
    }
  }
}
