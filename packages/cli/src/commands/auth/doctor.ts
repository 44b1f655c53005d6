/**
 * `trove doctor`: configuration, server reachability and health, latency, clock
 * skew (from the Date header), the key and its scope, and the exec sandbox.
 * `/healthz` only says up or down; with an admin key the details (database,
 * volume, version, exec mode) come from `/v1/admin/health`.
 */
import type { TroveAdminClient } from 'trove-sdk';
import type { Context } from '../../context.js';
import { CliError, ExitCode } from '../../errors.js';
import { maskKey } from '../../output/format.js';

type Status = 'ok' | 'warn' | 'fail';

interface Check {
  name: string;
  status: Status;
  detail: string;
}

interface Health {
  status?: string;
  detail?: string;
}

/** `GET /v1/admin/health` (admin keys). */
interface HealthDetails extends Health {
  database?: string;
  volume?: string;
  exec?: string;
  version?: string;
}

/** Webhook receivers reject signatures older than this, so a larger skew breaks them. */
const WEBHOOK_TOLERANCE_S = 300;

export async function run(ctx: Context): Promise<void> {
  const checks: Check[] = [];
  let failure: { exitCode: number; message: string } | null = null;
  const add = (c: Check, exitCode: number = ExitCode.error) => {
    checks.push(c);
    if (c.status === 'fail' && failure === null) failure = { exitCode, message: `${c.name}: ${c.detail}` };
  };

  const cfg = await ctx.config();
  add({
    name: 'config',
    status: 'ok',
    detail:
      cfg.source === 'env' ? 'TROVE_API_KEY from the environment' : `profile "${cfg.profile}" (${cfg.configPath})`,
  });

  const client = await ctx.admin();
  const probes: { ms: number; skewS: number | null; health: Health | null; httpStatus: number }[] = [];
  let unreachable: string | null = null;
  for (let i = 0; i < 3 && unreachable === null; i++) {
    try {
      probes.push(await probeHealth(client, ctx.io.signal));
    } catch (err) {
      unreachable = (err as Error).message;
    }
  }

  if (unreachable !== null && probes.length === 0) {
    add({ name: 'server', status: 'fail', detail: `${cfg.baseUrl} unreachable: ${unreachable}` }, ExitCode.network);
  } else {
    const last = probes[probes.length - 1]!;
    const h = last.health;
    const me = await client.me({ signal: ctx.io.signal, maxRetries: 0 }).then(
      (identity) => ({ identity, error: null }),
      (error: unknown) => ({ identity: null, error: error as { status?: number; message?: string } }),
    );
    // The details are for admin keys only; an unhealthy server answers 503 with them too.
    const details = me.identity?.scope === 'admin' ? await healthDetails(client, ctx.io.signal) : null;
    const parts = details
      ? `${details.version ? `, version ${details.version}` : ''} (database ${details.database ?? '?'}, volume ${details.volume ?? '?'})`
      : '';
    if (last.httpStatus === 200 && h?.status === 'ok') {
      add({ name: 'server', status: 'ok', detail: `${cfg.baseUrl} reachable${parts}` });
    } else {
      add({
        name: 'server',
        status: 'fail',
        detail: `${cfg.baseUrl} answered ${last.httpStatus}: ${details?.detail ?? h?.detail ?? 'unavailable'}`,
      });
    }
    const sorted = probes.map((p) => p.ms).sort((a, b) => a - b);
    const median = sorted[Math.floor(sorted.length / 2)]!;
    add({
      name: 'latency',
      status: median > 1000 ? 'warn' : 'ok',
      detail: `${Math.round(median)} ms round trip (median of ${sorted.length})`,
    });
    const skews = probes.map((p) => p.skewS).filter((s): s is number => s !== null);
    if (skews.length === 0) add({ name: 'clock', status: 'warn', detail: 'the server sent no Date header' });
    else {
      const skew = skews.sort((a, b) => Math.abs(a) - Math.abs(b))[0]!;
      const abs = Math.abs(skew);
      const dir = skew > 0 ? 'ahead of' : 'behind';
      add({
        name: 'clock',
        status: abs < 1 ? 'ok' : abs < WEBHOOK_TOLERANCE_S ? 'warn' : 'fail',
        detail:
          abs < 1
            ? 'in sync with the server'
            : `this machine is ${abs.toFixed(0)} s ${dir} the server${abs >= WEBHOOK_TOLERANCE_S ? ' (webhook signatures will be rejected)' : ''}`,
      });
    }

    if (me.identity) {
      const identity = me.identity;
      add({
        name: 'key',
        status: 'ok',
        detail: `${maskKey(cfg.apiKey)} valid: ${identity.scope} scope, workspace ${identity.workspaceId}${identity.namespace ? `, locked to namespace "${identity.namespace}"` : ''}`,
      });
      if (identity.scope === 'workspace') {
        const ns = identity.namespace ?? cfg.namespace;
        if (identity.namespace && cfg.namespace && cfg.namespace !== identity.namespace) {
          add(
            {
              name: 'namespace',
              status: 'fail',
              detail: `"${cfg.namespace}" is configured, but the key is locked to "${identity.namespace}"`,
            },
            ExitCode.auth,
          );
        } else {
          add({
            name: 'namespace',
            status: ns ? 'ok' : 'warn',
            detail: ns ? `"${ns}"` : 'none set: runtime commands need -n NAME (or `trove login --namespace NAME`)',
          });
        }
      } else {
        add({
          name: 'namespace',
          status: 'ok',
          detail: 'admin key: manages keys and webhooks; files and exec need a workspace key',
        });
      }
    } else {
      const e = me.error!;
      if (e.status === 401 || e.status === 403)
        add({ name: 'key', status: 'fail', detail: e.message ?? 'rejected' }, ExitCode.auth);
      else
        add(
          { name: 'key', status: 'fail', detail: e.message ?? String(e) },
          e.status === undefined ? ExitCode.network : ExitCode.error,
        );
    }

    add(sandboxCheck(me.identity?.scope ?? null, details?.exec));
  }

  if (ctx.json) {
    ctx.printJson({ ok: failure === null, checks });
  } else {
    const c = ctx.out;
    const mark = { ok: c.green('✓'), warn: c.yellow('!'), fail: c.red('✗') };
    for (const chk of checks) ctx.print(`${mark[chk.status]} ${chk.name.padEnd(10)} ${chk.detail}`);
  }
  if (failure !== null) {
    const f = failure as { exitCode: number; message: string };
    throw new CliError(`doctor found a problem: ${f.message}`, { exitCode: f.exitCode });
  }
}

/**
 * How far this machine's clock is ahead of the server's (negative: behind), in seconds, from a
 * response's Date header. The server read its clock somewhere between `sentMs` and `receivedMs`, and
 * Date is truncated to the second, so only the part of the offset beyond that uncertainty counts.
 */
export function clockSkewSeconds(sentMs: number, receivedMs: number, dateHeader: string | null): number | null {
  const serverMs = dateHeader ? Date.parse(dateHeader) : NaN;
  if (Number.isNaN(serverMs)) return null;
  const offsetMs = (sentMs + receivedMs) / 2 - (serverMs + 500);
  const uncertaintyMs = 500 + (receivedMs - sentMs) / 2;
  const beyond = Math.max(0, Math.abs(offsetMs) - uncertaintyMs);
  return beyond === 0 ? 0 : (Math.sign(offsetMs) * beyond) / 1000;
}

/** The exec sandbox, from the admin health details (`scope` null: the key check failed). */
function sandboxCheck(scope: string | null, mode: string | undefined): Check {
  if (scope === null) return { name: 'sandbox', status: 'warn', detail: 'not checked: the key check failed' };
  if (scope !== 'admin') {
    return {
      name: 'sandbox',
      status: 'warn',
      detail:
        'not checked: the server shows its exec mode to admin keys only (`trove doctor --profile <admin profile>`)',
    };
  }
  if (mode === 'bubblewrap') return { name: 'sandbox', status: 'ok', detail: 'bubblewrap: commands run isolated' };
  if (mode === 'insecure')
    return { name: 'sandbox', status: 'warn', detail: 'insecure: commands run without isolation (development mode)' };
  if (mode === 'unavailable') {
    return {
      name: 'sandbox',
      status: 'fail',
      detail: 'unavailable: `trove run` will fail (install bubblewrap on the server)',
    };
  }
  return { name: 'sandbox', status: 'warn', detail: 'the server did not report its exec mode' };
}

/** `GET /v1/admin/health`; null when it cannot be read (the check then says the mode is unknown). */
async function healthDetails(client: TroveAdminClient, signal: AbortSignal): Promise<HealthDetails | null> {
  return client
    .request(
      { method: 'GET', path: '/v1/admin/health', maxRetries: 0, timeoutMs: 10_000, signal },
      async (res) => (await res.json()) as HealthDetails,
    )
    .catch((err: { status?: number; body?: unknown }) =>
      err.status === 503 ? ((err.body ?? null) as HealthDetails | null) : null,
    );
}

/** One `GET /healthz`: round-trip time, clock skew against the Date header, and the body. */
async function probeHealth(client: TroveAdminClient, signal: AbortSignal) {
  const t0 = Date.now();
  return client
    .request(
      // 503 (unhealthy) is an answer to report, not something to retry.
      { method: 'GET', path: '/healthz', noAuth: true, maxRetries: 0, timeoutMs: 10_000, signal },
      async (res) => {
        const t1 = Date.now();
        const date = res.headers.get('date');
        const skewS = clockSkewSeconds(t0, t1, date);
        const health = (await res.json().catch(() => null)) as Health | null;
        return { ms: t1 - t0, skewS, health, httpStatus: res.status };
      },
    )
    .catch((err: { status?: number; body?: unknown; headers?: Headers }) => {
      // An unhealthy server answers 503 with {status, detail, code}.
      if (typeof err.status === 'number') {
        return {
          ms: Date.now() - t0,
          skewS: null,
          health: (err.body ?? null) as Health | null,
          httpStatus: err.status,
        };
      }
      throw err;
    });
}
