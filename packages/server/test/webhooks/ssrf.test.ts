import { describe, expect, it } from 'vitest';
import {
  DestinationRefusedError,
  ResolutionError,
  guardedLookup,
  refusalReason,
  resolveDestination,
  type Resolver,
} from '../../src/webhooks/ssrf.js';

const REFUSED = [
  ['0.0.0.0', 'unspecified'],
  ['0.1.2.3', 'unspecified'],
  ['10.0.0.1', 'private'],
  ['10.255.255.255', 'private'],
  ['100.64.0.1', 'carrier-grade NAT'],
  ['100.127.255.254', 'carrier-grade NAT'],
  ['127.0.0.1', 'loopback'],
  ['127.255.255.254', 'loopback'],
  ['169.254.169.254', 'metadata'],
  ['172.16.0.1', 'private'],
  ['172.31.255.255', 'private'],
  ['192.0.0.192', 'IETF'],
  ['192.0.2.10', 'documentation'],
  ['192.168.1.1', 'private'],
  ['198.18.0.1', 'benchmarking'],
  ['198.51.100.7', 'documentation'],
  ['203.0.113.9', 'documentation'],
  ['224.0.0.251', 'multicast'],
  ['239.255.255.250', 'multicast'],
  ['240.0.0.1', 'reserved'],
  ['255.255.255.255', 'reserved'],
  ['::', 'unspecified'],
  ['::1', 'loopback'],
  ['0:0:0:0:0:0:0:1', 'loopback'],
  ['::ffff:127.0.0.1', 'IPv4-mapped loopback'],
  ['::ffff:7f00:1', 'IPv4-mapped loopback'],
  ['::FFFF:169.254.169.254', 'IPv4-mapped link-local'],
  ['::ffff:10.1.2.3', 'IPv4-mapped private'],
  ['::127.0.0.1', 'IPv4-compatible loopback'],
  ['::ffff:0:10.0.0.1', 'IPv4-compatible private'],
  ['64:ff9b::a9fe:a9fe', 'NAT64 link-local'],
  ['64:ff9b::10.0.0.1', 'NAT64 private'],
  ['64:ff9b:1::1', 'local-use NAT64'],
  ['2002:7f00:1::', '6to4 loopback'],
  ['2002:c0a8:101::1', '6to4 private'],
  ['100::1', 'discard'],
  ['2001:db8::1', 'documentation'],
  ['2001::1', 'IETF'],
  ['fc00::1', 'unique local'],
  ['fd00:ec2::254', 'unique local'],
  ['fe80::1', 'link-local'],
  ['fe80::1%eth0', 'link-local'],
  ['febf::1', 'link-local'],
  ['fec0::1', 'site-local'],
  ['ff02::1', 'multicast'],
] as const;

const ALLOWED = [
  '1.1.1.1',
  '8.8.8.8',
  '93.184.216.34',
  '100.63.255.255',
  '100.128.0.0',
  '172.15.255.255',
  '172.32.0.0',
  '192.169.0.1',
  '11.0.0.1',
  '223.255.255.254',
  '2606:4700:4700::1111',
  '2a00:1450:4001:80b::200e',
  '::ffff:8.8.8.8',
  '64:ff9b::808:808',
  '2002:808:808::1',
  '2001:4860:4860::8888',
];

describe('refusalReason', () => {
  it.each(REFUSED)('refuses %s (%s)', (ip, why) => {
    const reason = refusalReason(ip);
    expect(reason).not.toBeNull();
    expect(reason!.toLowerCase()).toContain(why.toLowerCase().split(' ')[0]!);
  });

  it.each(ALLOWED)('allows public %s', (ip) => {
    expect(refusalReason(ip)).toBeNull();
  });

  it('refuses what is not an IP address', () => {
    expect(refusalReason('example.com')).toBe('not an IP address');
    expect(refusalReason('1.2.3')).toBe('not an IP address');
  });
});

const fixed =
  (table: Record<string, string[]>): Resolver =>
  async (host) => {
    const addrs = table[host];
    if (!addrs) throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' });
    return addrs.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }) as const);
  };

describe('resolveDestination', () => {
  const resolve = fixed({
    'public.test': ['93.184.216.34'],
    'mixed.test': ['93.184.216.34', '10.0.0.5'],
    'meta.test': ['169.254.169.254'],
    'v6local.test': ['::1'],
  });

  it('returns the addresses of a public host', async () => {
    await expect(resolveDestination('public.test', { allowPrivate: false, resolve })).resolves.toEqual([
      { address: '93.184.216.34', family: 4 },
    ]);
  });

  it('refuses a host with any private address, naming it and the fix', async () => {
    const err = await resolveDestination('mixed.test', { allowPrivate: false, resolve }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DestinationRefusedError);
    expect((err as Error).message).toBe(
      'Refused: mixed.test resolves to 10.0.0.5, a private network address; webhooks may only target public addresses (the operator setting TROVE_WEBHOOK_ALLOW_PRIVATE=1 allows private ones for development)',
    );
    await expect(resolveDestination('meta.test', { allowPrivate: false, resolve })).rejects.toThrow(
      /169\.254\.169\.254, a link-local/,
    );
    await expect(resolveDestination('v6local.test', { allowPrivate: false, resolve })).rejects.toThrow(
      /::1, a loopback/,
    );
  });

  it('checks IP literals without DNS, brackets included', async () => {
    const never: Resolver = async () => {
      throw new Error('must not resolve a literal');
    };
    await expect(resolveDestination('[::ffff:127.0.0.1]', { allowPrivate: false, resolve: never })).rejects.toThrow(
      'Refused: ::ffff:127.0.0.1 is a IPv4-mapped loopback address',
    );
    await expect(resolveDestination('127.0.0.1', { allowPrivate: false, resolve: never })).rejects.toBeInstanceOf(
      DestinationRefusedError,
    );
    await expect(resolveDestination('8.8.8.8', { allowPrivate: false, resolve: never })).resolves.toEqual([
      { address: '8.8.8.8', family: 4 },
    ]);
  });

  it('allows everything when private targets are allowed', async () => {
    await expect(resolveDestination('mixed.test', { allowPrivate: true, resolve })).resolves.toHaveLength(2);
    await expect(resolveDestination('127.0.0.1', { allowPrivate: true, resolve })).resolves.toEqual([
      { address: '127.0.0.1', family: 4 },
    ]);
  });

  it('reports a name that does not resolve', async () => {
    const err = await resolveDestination('nope.test', { allowPrivate: false, resolve }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ResolutionError);
    expect((err as Error).message).toBe(
      'DNS lookup of nope.test failed (ENOTFOUND: no such host, or it has no address record)',
    );
    expect((err as ResolutionError).code).toBe('ENOTFOUND');
    const empty: Resolver = async () => [];
    await expect(resolveDestination('empty.test', { allowPrivate: false, resolve: empty })).rejects.toThrow(
      'DNS lookup of empty.test failed (ENOTFOUND: no such host, or it has no address record)',
    );
  });

  it('reports a resolver that is down, and one that does not answer in time', async () => {
    const down: Resolver = async () => {
      throw Object.assign(new Error('getaddrinfo EAI_AGAIN'), { code: 'EAI_AGAIN' });
    };
    await expect(resolveDestination('a.test', { allowPrivate: false, resolve: down })).rejects.toThrow(
      'DNS lookup of a.test failed (EAI_AGAIN: the DNS resolver did not answer)',
    );
    const odd: Resolver = async () => {
      throw Object.assign(new Error('?'), { code: 'EWEIRD' });
    };
    await expect(resolveDestination('b.test', { allowPrivate: false, resolve: odd })).rejects.toThrow(
      /^DNS lookup of b\.test failed \(EWEIRD\)$/,
    );
    const hang: Resolver = () => new Promise(() => {});
    const err = await resolveDestination('c.test', { allowPrivate: false, resolve: hang, timeoutMs: 50 }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ResolutionError);
    expect((err as Error).message).toBe('DNS lookup of c.test failed (ETIMEOUT: no answer within 50 ms)');
    // A resolver that answers in time is not affected by the bound.
    await expect(
      resolveDestination('public.test', { allowPrivate: false, resolve, timeoutMs: 5_000 }),
    ).resolves.toHaveLength(1);
  });
});

describe('guardedLookup', () => {
  const resolve = fixed({
    'dual.test': ['93.184.216.34', '2606:4700::1'],
    'private.test': ['192.168.0.10'],
    'mixed.test': ['2606:4700::1', '93.184.216.34', '::ffff:127.0.0.1'],
  });
  const call = (host: string, options: { all?: boolean; family?: number }, allowPrivate = false) =>
    new Promise<{ err: Error | null; address: unknown; family?: number }>((done) =>
      guardedLookup({ allowPrivate, resolve })(host, options, (err, address, family) => done({ err, address, family })),
    );

  it('answers in the single-address form', async () => {
    expect(await call('dual.test', {})).toEqual({ err: null, address: '93.184.216.34', family: 4 });
    expect(await call('dual.test', { family: 6 })).toEqual({ err: null, address: '2606:4700::1', family: 6 });
  });

  it('answers in the all-addresses form (autoSelectFamily)', async () => {
    expect((await call('dual.test', { all: true })).address).toEqual([
      { address: '93.184.216.34', family: 4 },
      { address: '2606:4700::1', family: 6 },
    ]);
  });

  it('fails the connection for a refused host', async () => {
    const r = await call('private.test', { all: true });
    expect(r.err).toBeInstanceOf(DestinationRefusedError);
    expect((await call('private.test', {}, true)).address).toBe('192.168.0.10');
  });

  it('fails the connection for a host with public and private addresses, whatever family is asked', async () => {
    for (const options of [{}, { all: true }, { family: 4 }, { family: 6 }]) {
      const r = await call('mixed.test', options);
      expect(r.err).toBeInstanceOf(DestinationRefusedError);
      expect(r.err!.message).toMatch(
        /^Refused: mixed\.test resolves to ::ffff:127\.0\.0\.1, a IPv4-mapped loopback address; /,
      );
    }
  });

  it('fails the connection for a host that does not resolve', async () => {
    const r = await call('nowhere.test', { all: true });
    expect(r.err).toBeInstanceOf(ResolutionError);
    expect(r.err!.message).toBe(
      'DNS lookup of nowhere.test failed (ENOTFOUND: no such host, or it has no address record)',
    );
  });
});
