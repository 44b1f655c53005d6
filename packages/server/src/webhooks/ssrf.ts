/**
 * SSRF guard for webhook URLs. A webhook makes the server send requests to an
 * address chosen by a tenant, so by default every destination that is not a
 * public unicast address is refused: loopback, private, link-local (cloud
 * metadata), CGNAT, unspecified, multicast, documentation and reserved ranges,
 * for IPv4 and IPv6 alike, including IPv4 addresses embedded in IPv6
 * (IPv4-mapped, IPv4-compatible, NAT64, 6to4). The delivery path resolves the
 * host itself and connects to the address it checked (see deliver.ts), so a DNS
 * answer that changes between the check and the connection cannot slip through.
 * That connect-time check is the guard; the one at creation only refuses early
 * what is already known to be refused (a name that does not resolve yet passes).
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import { isIP } from 'node:net';

export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

/** Resolves a host name to every address it has (tests inject their own). */
export type Resolver = (hostname: string) => Promise<ResolvedAddress[]>;

export const systemResolver: Resolver = async (hostname) => {
  const all = await dnsLookup(hostname, { all: true, verbatim: true });
  return all.map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 }));
};

/** A destination the guard refused; the message says why and how to allow it. */
export class DestinationRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DestinationRefusedError';
  }
}

/** What a resolver error code means, for people reading a delivery log. */
function resolutionHint(code: string | undefined): string | null {
  switch (code) {
    case 'ENOTFOUND':
    case 'ENODATA':
    case 'EAI_NONAME':
    case 'EAI_NODATA':
      return 'no such host, or it has no address record';
    case 'EAI_AGAIN':
    case 'ESERVFAIL':
    case 'ECONNREFUSED':
    case 'ETIMEOUT':
      return 'the DNS resolver did not answer';
    default:
      return null;
  }
}

/**
 * Host name resolution failed (NXDOMAIN, resolver down): retried like any
 * connection error at delivery, accepted with a warning at creation.
 */
export class ResolutionError extends Error {
  readonly code: string | undefined;
  constructor(hostname: string, code: string | undefined, hint = resolutionHint(code)) {
    super(`DNS lookup of ${hostname} failed${code ? ` (${code}${hint ? `: ${hint}` : ''})` : ''}`);
    this.name = 'ResolutionError';
    this.code = code;
  }
}

interface Range4 {
  base: number;
  bits: number;
  why: string;
}

function v4ToInt(ip: string): number {
  const p = ip.split('.').map(Number);
  return ((p[0]! << 24) | (p[1]! << 16) | (p[2]! << 8) | p[3]!) >>> 0;
}

function r4(cidr: string, why: string): Range4 {
  const [base, bits] = cidr.split('/');
  return { base: v4ToInt(base!), bits: Number(bits), why };
}

const V4_BLOCKED: Range4[] = [
  r4('0.0.0.0/8', 'unspecified ("this network")'),
  r4('10.0.0.0/8', 'private network'),
  r4('100.64.0.0/10', 'carrier-grade NAT'),
  r4('127.0.0.0/8', 'loopback'),
  r4('169.254.0.0/16', 'link-local (cloud metadata)'),
  r4('172.16.0.0/12', 'private network'),
  r4('192.0.0.0/24', 'IETF protocol assignments'),
  r4('192.0.2.0/24', 'documentation'),
  r4('192.88.99.0/24', '6to4 relay anycast'),
  r4('192.168.0.0/16', 'private network'),
  r4('198.18.0.0/15', 'benchmarking'),
  r4('198.51.100.0/24', 'documentation'),
  r4('203.0.113.0/24', 'documentation'),
  r4('224.0.0.0/4', 'multicast'),
  r4('240.0.0.0/4', 'reserved'),
];

function classify4(n: number): string | null {
  for (const r of V4_BLOCKED) {
    const mask = r.bits === 0 ? 0 : (0xffffffff << (32 - r.bits)) >>> 0;
    if ((n & mask) >>> 0 === (r.base & mask) >>> 0) return r.why;
  }
  return null;
}

/** Expands an IPv6 literal (optionally with a dotted IPv4 tail or a zone) to 8 groups. */
function v6Groups(ip: string): number[] | null {
  let s = ip.toLowerCase();
  const zone = s.indexOf('%');
  if (zone !== -1) s = s.slice(0, zone);
  const lastColon = s.lastIndexOf(':');
  const tail = s.slice(lastColon + 1);
  if (tail.includes('.')) {
    // "::ffff:1.2.3.4" → "::ffff:102:304", so only one grammar is parsed below.
    if (isIP(tail) !== 4) return null;
    const n = v4ToInt(tail);
    s = `${s.slice(0, lastColon + 1)}${(n >>> 16).toString(16)}:${(n & 0xffff).toString(16)}`;
  }
  const halves = s.split('::');
  if (halves.length > 2) return null;
  const parse = (part: string) =>
    part === '' ? [] : part.split(':').map((h) => (/^[0-9a-f]{1,4}$/.test(h) ? parseInt(h, 16) : NaN));
  const head = parse(halves[0]!);
  let groups = head;
  if (halves.length === 2) {
    const rest = parse(halves[1]!);
    const fill = 8 - head.length - rest.length;
    if (fill < 1) return null;
    groups = [...head, ...new Array<number>(fill).fill(0), ...rest];
  }
  if (groups.length !== 8 || groups.some((g) => Number.isNaN(g))) return null;
  return groups;
}

function embeddedV4(hi: number, lo: number): number {
  return ((hi << 16) | lo) >>> 0;
}

function classify6(g: number[]): string | null {
  const allZero = (from: number, to: number) => g.slice(from, to).every((x) => x === 0);
  if (allZero(0, 8)) return 'unspecified';
  if (allZero(0, 7) && g[7] === 1) return 'loopback';
  // ::ffff:a.b.c.d (IPv4-mapped): the kernel connects to the IPv4 address.
  if (allZero(0, 5) && g[5] === 0xffff) {
    const why = classify4(embeddedV4(g[6]!, g[7]!));
    return why ? `IPv4-mapped ${why}` : null;
  }
  // ::a.b.c.d (deprecated IPv4-compatible) and ::ffff:0:a.b.c.d (IPv4-translated).
  if (allZero(0, 6) || (allZero(0, 4) && g[4] === 0xffff && g[5] === 0)) {
    const why = classify4(embeddedV4(g[6]!, g[7]!));
    return why ? `IPv4-compatible ${why}` : null;
  }
  // 64:ff9b::/96 NAT64: the gateway forwards to the embedded IPv4 address.
  if (g[0] === 0x64 && g[1] === 0xff9b && allZero(2, 6)) {
    const why = classify4(embeddedV4(g[6]!, g[7]!));
    return why ? `NAT64 ${why}` : null;
  }
  if (g[0] === 0x64 && g[1] === 0xff9b && g[2] === 1) return 'local-use NAT64';
  // 2002::/16 6to4 embeds the IPv4 address in bits 16-47.
  if (g[0] === 0x2002) {
    const why = classify4(embeddedV4(g[1]!, g[2]!));
    return why ? `6to4 ${why}` : null;
  }
  if (g[0] === 0x100 && allZero(1, 4)) return 'discard-only';
  if (g[0] === 0x2001 && g[1] === 0xdb8) return 'documentation';
  // 2001::/23 IETF protocol assignments (Teredo, ORCHID, …).
  if (g[0] === 0x2001 && g[1]! < 0x200) return 'IETF protocol assignments';
  if ((g[0]! & 0xfe00) === 0xfc00) return 'unique local (private network)';
  if ((g[0]! & 0xffc0) === 0xfe80) return 'link-local';
  if ((g[0]! & 0xffc0) === 0xfec0) return 'site-local';
  if ((g[0]! & 0xff00) === 0xff00) return 'multicast';
  return null;
}

/**
 * Why an IP address may not be a webhook destination, or null when it is a
 * public unicast address. Anything that does not parse is refused.
 */
export function refusalReason(address: string): string | null {
  const kind = isIP(address.includes('%') ? address.slice(0, address.indexOf('%')) : address);
  if (kind === 4) return classify4(v4ToInt(address));
  if (kind === 6) {
    const g = v6Groups(address);
    return g ? classify6(g) : 'unparseable IPv6 address';
  }
  return 'not an IP address';
}

/** `[::1]` → `::1`: URL.hostname keeps the brackets of IPv6 literals. */
export function bareHost(hostname: string): string {
  return hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
}

const HINT =
  'webhooks may only target public addresses (the operator setting TROVE_WEBHOOK_ALLOW_PRIVATE=1 allows private ones for development)';

/**
 * Resolves `hostname` and returns the addresses to connect to, or throws
 * DestinationRefusedError when any of them is refused: a name that resolves to
 * one public and one private address is refused as a whole, because the
 * connection could go to either.
 */
export async function resolveDestination(
  hostname: string,
  opts: { allowPrivate: boolean; resolve: Resolver; timeoutMs?: number },
): Promise<ResolvedAddress[]> {
  const host = bareHost(hostname);
  const literal = isIP(host);
  if (literal) {
    if (!opts.allowPrivate) {
      const why = refusalReason(host);
      if (why) throw new DestinationRefusedError(`Refused: ${host} is a ${why} address; ${HINT}`);
    }
    return [{ address: host, family: literal === 6 ? 6 : 4 }];
  }
  let addresses: ResolvedAddress[];
  try {
    addresses = await withTimeout(opts.resolve(host), host, opts.timeoutMs);
  } catch (err) {
    if (err instanceof ResolutionError) throw err;
    throw new ResolutionError(host, (err as NodeJS.ErrnoException).code);
  }
  if (addresses.length === 0) throw new ResolutionError(host, 'ENOTFOUND');
  if (!opts.allowPrivate) {
    for (const a of addresses) {
      const why = refusalReason(a.address);
      if (why)
        throw new DestinationRefusedError(`Refused: ${host} resolves to ${a.address}, a ${why} address; ${HINT}`);
    }
  }
  return addresses;
}

/**
 * A lookup that hangs (resolver down: getaddrinfo retries for tens of seconds)
 * fails after `timeoutMs`; the lookup itself cannot be cancelled and finishes unseen.
 */
function withTimeout(
  pending: Promise<ResolvedAddress[]>,
  host: string,
  timeoutMs: number | undefined,
): Promise<ResolvedAddress[]> {
  if (timeoutMs === undefined) return pending;
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new ResolutionError(host, 'ETIMEOUT', `no answer within ${timeoutMs} ms`)),
      timeoutMs,
    );
  });
  return Promise.race([pending, expired]).finally(() => clearTimeout(timer));
}

type LookupCallback = (
  err: NodeJS.ErrnoException | null,
  address: string | { address: string; family: number }[],
  family?: number,
) => void;

/**
 * A `lookup` for net/tls.connect that resolves through the guard, so every new
 * connection goes to an address that was checked at that moment. Node calls it
 * with `all: true` when it races IPv4/IPv6 (autoSelectFamily).
 */
export function guardedLookup(opts: { allowPrivate: boolean; resolve: Resolver }) {
  return (hostname: string, options: { all?: boolean; family?: number | string }, callback: LookupCallback): void => {
    resolveDestination(hostname, opts).then(
      (addresses) => {
        const fam =
          options.family === 6 || options.family === 'IPv6'
            ? 6
            : options.family === 4 || options.family === 'IPv4'
              ? 4
              : 0;
        const usable = fam ? addresses.filter((a) => a.family === fam) : addresses;
        if (usable.length === 0) {
          const err: NodeJS.ErrnoException = new Error(`No IPv${fam} address for ${hostname}`);
          err.code = 'ENOTFOUND';
          callback(err, '');
          return;
        }
        if (options.all)
          callback(
            null,
            usable.map((a) => ({ address: a.address, family: a.family })),
          );
        else callback(null, usable[0]!.address, usable[0]!.family);
      },
      (err: Error) => callback(err as NodeJS.ErrnoException, ''),
    );
  };
}
