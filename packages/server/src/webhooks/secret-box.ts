/**
 * Signing secrets at rest. The server must be able to sign, so secrets are
 * stored recoverably, but encrypted (AES-256-GCM) with a key kept in a file in
 * the data dir rather than in the database: a leaked database dump or backup
 * alone does not reveal them. Cluster nodes share the data dir, and so the key.
 * Stored form: `enc:v1:<base64 iv(12) | tag(16) | ciphertext>`.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';

export const KEY_FILE = 'webhook-secrets.key';
const PREFIX = 'enc:v1:';

export class SecretBox {
  /** Opened secrets by sealed value: every delivery signs, and decrypting each time is measurable. */
  private readonly cache = new Map<string, string>();

  private constructor(private readonly key: Buffer) {}

  static fromKey(key: Buffer): SecretBox {
    if (key.length !== 32) throw new Error('webhook secret key must be 32 bytes');
    return new SecretBox(key);
  }

  /**
   * Loads `<dataDir>/webhook-secrets.key`, creating it on first use. Creation
   * writes a temp file and hard-links it into place, which fails if another
   * node won the race, so every node ends up with the same complete key.
   */
  static async open(dataDir: string): Promise<SecretBox> {
    const path = join(dataDir, KEY_FILE);
    const read = async () => {
      const raw = (await fsp.readFile(path, 'utf8')).trim();
      const key = Buffer.from(raw, 'base64');
      if (key.length !== 32) throw new Error(`${path} is not a valid key (expected 32 bytes, base64)`);
      return new SecretBox(key);
    };
    try {
      return await read();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    // Security: the key file is readable by the server user only.
    await fsp.writeFile(tmp, randomBytes(32).toString('base64') + '\n', { mode: 0o600, flag: 'wx' });
    try {
      await fsp.link(tmp, path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    } finally {
      await fsp.unlink(tmp).catch(() => {});
    }
    return read();
  }

  seal(secret: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    const ct = Buffer.concat([cipher.update(secret, 'utf8'), cipher.final()]);
    return PREFIX + Buffer.concat([iv, cipher.getAuthTag(), ct]).toString('base64');
  }

  /** Plain values (rows written without encryption) pass through unchanged. */
  open(stored: string): string {
    if (!stored.startsWith(PREFIX)) return stored;
    const hit = this.cache.get(stored);
    if (hit !== undefined) return hit;
    const plain = this.decrypt(stored);
    // The key in memory can decrypt any of them anyway; the bound only caps memory.
    if (this.cache.size >= 1024) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(stored, plain);
    return plain;
  }

  private decrypt(stored: string): string {
    const raw = Buffer.from(stored.slice(PREFIX.length), 'base64');
    if (raw.length < 29) throw new Error('sealed webhook secret is truncated');
    const decipher = createDecipheriv('aes-256-gcm', this.key, raw.subarray(0, 12));
    decipher.setAuthTag(raw.subarray(12, 28));
    try {
      return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8');
    } catch {
      throw new Error(
        `webhook signing secret cannot be decrypted: ${KEY_FILE} in the data dir is not the key it was sealed with`,
      );
    }
  }
}
