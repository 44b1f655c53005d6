import { mkdtempSync, readFileSync, statSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { KEY_FILE, SecretBox } from '../../src/webhooks/secret-box.js';

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'trove-secretbox-'));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('SecretBox', () => {
  it('seals and opens a secret without storing it in the clear', async () => {
    const box = await SecretBox.open(tmp());
    const secret = 'trove-whsec-abcdefghijklmnopqrstuvwxyz0123456789ABCD';
    const sealed = box.seal(secret);
    expect(sealed.startsWith('enc:v1:')).toBe(true);
    expect(sealed).not.toContain('abcdefghij');
    expect(box.seal(secret)).not.toBe(sealed); // fresh IV each time
    expect(box.open(sealed)).toBe(secret);
  });

  it('creates the key file once, private to the server user, and reuses it', async () => {
    const dir = tmp();
    const a = await SecretBox.open(dir);
    const mode = statSync(join(dir, KEY_FILE)).mode & 0o777;
    expect(mode).toBe(0o600);
    const b = await SecretBox.open(dir);
    expect(b.open(a.seal('x'))).toBe('x');
  });

  it('gives every concurrent opener the same key (cluster nodes starting together)', async () => {
    const dir = tmp();
    const boxes = await Promise.all(Array.from({ length: 8 }, () => SecretBox.open(dir)));
    const sealed = boxes[0]!.seal('shared');
    for (const b of boxes) expect(b.open(sealed)).toBe('shared');
    expect(readFileSync(join(dir, KEY_FILE), 'utf8').trim()).toHaveLength(44);
  });

  it('says which file is wrong when the key does not match, and detects tampering', async () => {
    const sealed = (await SecretBox.open(tmp())).seal('s');
    const other = SecretBox.fromKey(randomBytes(32));
    expect(() => other.open(sealed)).toThrow(
      'webhook signing secret cannot be decrypted: webhook-secrets.key in the data dir is not the key it was sealed with',
    );
    const box = await SecretBox.open(tmp());
    const good = box.seal('secret');
    const raw = Buffer.from(good.slice(7), 'base64');
    raw[raw.length - 1]! ^= 1;
    expect(() => box.open('enc:v1:' + raw.toString('base64'))).toThrow(/cannot be decrypted/);
  });

  it('passes plain (unsealed) values through', async () => {
    const box = await SecretBox.open(tmp());
    expect(box.open('trove-whsec-plain')).toBe('trove-whsec-plain');
  });

  it('refuses a corrupt key file', async () => {
    const dir = tmp();
    writeFileSync(join(dir, KEY_FILE), 'short\n');
    await expect(SecretBox.open(dir)).rejects.toThrow(/is not a valid key/);
  });
});
