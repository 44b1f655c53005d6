/**
 * docs/protocol.md describes exactly the endpoints the server serves: every path and method of
 * `/openapi.json` has its heading in the document, and every endpoint heading of the document exists in
 * `/openapi.json`. The OpenAPI document is read from the app in-process (`inject()`, no listening socket).
 *
 * Endpoint headings in docs/protocol.md look like ``### `GET /v1/files/content` · hosted`` (or `· ours`).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { startTestApp, type TestApp } from '../helpers/app.js';

const DOC_URL = new URL('../../../../docs/protocol.md', import.meta.url);
const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'] as const;

interface DocEndpoint {
  endpoint: string;
  mark: 'hosted' | 'ours' | null;
  line: number;
}

/** The endpoint headings of the document, in order, with their hosted/ours mark. */
function parseEndpointHeadings(markdown: string): DocEndpoint[] {
  const out: DocEndpoint[] = [];
  markdown.split('\n').forEach((text, i) => {
    const m = /^#{2,4} `([A-Z]+) (\/[^`\s]*)`(.*)$/.exec(text);
    if (!m) return;
    const rest = m[3]!;
    const mark = /·\s*hosted\b/.test(rest) ? 'hosted' : /·\s*ours\b/.test(rest) ? 'ours' : null;
    out.push({ endpoint: `${m[1]} ${m[2]}`, mark, line: i + 1 });
  });
  return out;
}

interface OpenApiOperation {
  summary?: string;
}
interface OpenApiDocument {
  paths: Record<string, Partial<Record<(typeof METHODS)[number], OpenApiOperation>>>;
}

let t: TestApp;
let openapi: OpenApiDocument;
let doc: DocEndpoint[];

beforeAll(async () => {
  t = await startTestApp();
  const res = await t.request('GET', '/openapi.json');
  expect(res.statusCode).toBe(200);
  openapi = res.json<OpenApiDocument>();
  doc = parseEndpointHeadings(await readFile(DOC_URL, 'utf8'));
});

afterAll(() => t?.close());

function openapiEndpoints(): Map<string, OpenApiOperation> {
  const out = new Map<string, OpenApiOperation>();
  for (const [path, ops] of Object.entries(openapi.paths)) {
    for (const method of METHODS) {
      const op = ops[method];
      if (op) out.set(`${method.toUpperCase()} ${path}`, op);
    }
  }
  return out;
}

describe('docs/protocol.md against /openapi.json', () => {
  it('parses endpoint headings, and only well-formed ones', () => {
    const parsed = parseEndpointHeadings(
      [
        '### `GET /v1/me` · hosted',
        '#### `PATCH /v1/x/{id}` · ours',
        '### `GET /v1/me`',
        '### GET /v1/me',
        'text `POST /write`',
      ].join('\n'),
    );
    expect(parsed).toEqual([
      { endpoint: 'GET /v1/me', mark: 'hosted', line: 1 },
      { endpoint: 'PATCH /v1/x/{id}', mark: 'ours', line: 2 },
      { endpoint: 'GET /v1/me', mark: null, line: 3 },
    ]);
  });

  it('documents every path and method of /openapi.json', () => {
    const documented = new Set(doc.map((d) => d.endpoint));
    const missing = [...openapiEndpoints().keys()].filter((e) => !documented.has(e));
    expect(missing, 'served but not in docs/protocol.md').toEqual([]);
  });

  it('lists no endpoint that /openapi.json does not have', () => {
    const served = openapiEndpoints();
    const unknown = doc.filter((d) => !served.has(d.endpoint)).map((d) => `${d.endpoint} (line ${d.line})`);
    expect(unknown, 'in docs/protocol.md but not served').toEqual([]);
  });

  it('has one heading per endpoint, each marked hosted or ours', () => {
    const seen = new Map<string, number>();
    const duplicates: string[] = [];
    for (const d of doc) {
      if (seen.has(d.endpoint)) duplicates.push(`${d.endpoint} (lines ${seen.get(d.endpoint)} and ${d.line})`);
      seen.set(d.endpoint, d.line);
    }
    expect(duplicates).toEqual([]);
    expect(
      doc.filter((d) => d.mark === null).map((d) => `${d.endpoint} (line ${d.line})`),
      'headings without a mark',
    ).toEqual([]);
  });

  it('never marks as hosted an endpoint that /openapi.json calls ours', () => {
    const served = openapiEndpoints();
    const wrong = doc
      .filter((d) => d.mark === 'hosted' && /\bours\b/i.test(served.get(d.endpoint)?.summary ?? ''))
      .map((d) => `${d.endpoint} (line ${d.line})`);
    expect(wrong).toEqual([]);
  });
});
