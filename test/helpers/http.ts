/**
 * Request and answer helpers shared by the API tests (spawned servers and in-process apps alike): a JSON
 * request, an answer that must have a status (its body parsed), and an error answer's status, code and detail.
 */
import { expect } from 'vitest';

/** A request with a JSON body (none when `body` is undefined). */
export const json = (method: string, body?: unknown, headers: Record<string, string> = {}): RequestInit => ({
  method,
  headers: { 'content-type': 'application/json', ...headers },
  ...(body === undefined ? {} : { body: JSON.stringify(body) }),
});

/** The parsed body of an answer that must have `status` (on failure the assertion shows the body). */
export async function ok<T>(res: Response | Promise<Response>, status = 200): Promise<T> {
  const r = await res;
  const text = await r.text();
  expect([r.status, text]).toEqual([status, text]);
  return JSON.parse(text) as T;
}

/** An error answer as `{status, code, detail}`. */
export async function errorOf(
  res: Response | Promise<Response>,
): Promise<{ status: number; code: string; detail: string }> {
  const r = await res;
  const body = (await r.json()) as { code: string; detail: string };
  return { status: r.status, code: body.code, detail: body.detail };
}

/** A chunk of a background process's output (`GET /v1/processes/{id}/output`, and the stream's events). */
export interface ProcessOutput {
  process_id: string;
  stream: string;
  offset: number;
  next_offset: number;
  data: string;
  encoding: 'utf-8' | 'base64';
  dropped_bytes: number;
  eof: boolean;
}

/** The bytes of an output chunk. */
export function decodeOutput(o: { data: string; encoding: string }): Buffer {
  return Buffer.from(o.data, o.encoding === 'base64' ? 'base64' : 'utf8');
}

/** A request to the API with a key (and namespace) already set: a spawned server's or an in-process app's. */
export type Requester = (path: string, init?: RequestInit) => Promise<Response>;

/** A process's whole retained stream, read page by page from `from` until its end (`eof`). */
export async function readProcessOutput(
  rt: Requester,
  id: string,
  stream: 'stdout' | 'stderr',
  from = 0,
  limit?: number,
): Promise<{ data: Buffer; first: ProcessOutput; last: ProcessOutput }> {
  const parts: Buffer[] = [];
  let offset = from;
  let first: ProcessOutput | undefined;
  for (;;) {
    const o = await ok<ProcessOutput>(
      rt(`/v1/processes/${id}/output?stream=${stream}&offset=${offset}${limit ? `&limit=${limit}` : ''}`),
    );
    first ??= o;
    parts.push(decodeOutput(o));
    offset = o.next_offset;
    if (o.eof) return { data: Buffer.concat(parts), first, last: o };
    if (o.data === '') await new Promise((r) => setTimeout(r, 20));
  }
}
