/**
 * The sandbox's /etc (bwrap.ts prepareEtc): one directory bound read-only, made of the generated
 * passwd/group/hosts and copies of the host entries a sandbox may see, nothing else; etcSignature()
 * changes when one of those entries does, so the server makes a fresh copy.
 */
import { afterAll, describe, expect, it } from 'vitest';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { etcSignature, prepareEtc } from '../../src/sandbox/bwrap.js';

const base = mkdtempSync(join(tmpdir(), 'trove-etc-test-'));
afterAll(() => rmSync(base, { recursive: true, force: true }));

/** A fake host /etc: allowed entries, a nested directory with a relative link, and secrets. */
function fakeHost(): string {
  const root = join(base, `host-${Math.random().toString(16).slice(2)}`);
  mkdirSync(join(root, 'fonts', 'conf.d'), { recursive: true });
  mkdirSync(join(root, 'fonts', 'conf.avail'));
  writeFileSync(join(root, 'fonts', 'conf.avail', '10-a.conf'), '<fontconfig/>');
  symlinkSync('../conf.avail/10-a.conf', join(root, 'fonts', 'conf.d', '10-a.conf'));
  writeFileSync(join(root, 'nsswitch.conf'), 'passwd: files\n');
  symlinkSync('/usr/share/zoneinfo/Etc/UTC', join(root, 'localtime'));
  mkdirSync(join(root, 'python3.11'));
  writeFileSync(join(root, 'python3.11', 'sitecustomize.py'), '');
  writeFileSync(join(root, 'shadow'), 'root:secret\n');
  mkdirSync(join(root, 'ssl', 'private'), { recursive: true });
  writeFileSync(join(root, 'ssl', 'private', 'key.pem'), 'secret');
  mkdirSync(join(root, 'ssl', 'certs'));
  writeFileSync(join(root, 'ssl', 'certs', 'ca.pem'), 'cert');
  return root;
}

describe('prepareEtc', () => {
  it('copies only the allowed entries (links as links) and generates passwd, group and hosts', () => {
    const host = fakeHost();
    const etc = prepareEtc(base, { uid: 64000, gid: 64000, network: false }, host);
    expect(readFileSync(join(etc, 'nsswitch.conf'), 'utf8')).toBe('passwd: files\n');
    expect(readlinkSync(join(etc, 'localtime'))).toBe('/usr/share/zoneinfo/Etc/UTC');
    expect(readlinkSync(join(etc, 'fonts', 'conf.d', '10-a.conf'))).toBe('../conf.avail/10-a.conf');
    expect(readFileSync(join(etc, 'fonts', 'conf.d', '10-a.conf'), 'utf8')).toBe('<fontconfig/>');
    expect(existsSync(join(etc, 'python3.11', 'sitecustomize.py'))).toBe(true);
    expect(readFileSync(join(etc, 'ssl', 'certs', 'ca.pem'), 'utf8')).toBe('cert');
    expect(existsSync(join(etc, 'shadow'))).toBe(false);
    expect(existsSync(join(etc, 'ssl', 'private'))).toBe(false);
    expect(readFileSync(join(etc, 'passwd'), 'utf8')).toContain('agent:x:64000:64000:');
    expect(readFileSync(join(etc, 'hosts'), 'utf8')).toContain('127.0.0.1\tlocalhost');
    expect(existsSync(join(etc, 'resolv.conf'))).toBe(false);
    expect(lstatSync(etc).mode & 0o777).toBe(0o755);
  });

  it('leaves an empty resolv.conf to bind the live one on when the network is on', () => {
    const etc = prepareEtc(base, { uid: 64000, gid: 64000, network: true }, fakeHost());
    expect(readFileSync(join(etc, 'resolv.conf'), 'utf8')).toBe('');
  });
});

describe('etcSignature', () => {
  it('changes when a copied entry changes, deep inside a directory too, and not for other files', () => {
    const host = fakeHost();
    const first = etcSignature(host);
    expect(etcSignature(host)).toBe(first);
    writeFileSync(join(host, 'shadow'), 'root:other\n');
    expect(etcSignature(host)).toBe(first);
    writeFileSync(join(host, 'fonts', 'conf.avail', '10-a.conf'), '<fontconfig><dir/></fontconfig>');
    const second = etcSignature(host);
    expect(second).not.toBe(first);
    utimesSync(join(host, 'nsswitch.conf'), new Date(0), new Date(0));
    expect(etcSignature(host)).not.toBe(second);
  });
});
