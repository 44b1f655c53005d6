/** Input rules for webhook endpoints: URL, event filter, namespace, description. */
import { AppError } from '../errors.js';
import { validateNamespaceName } from '../namespaces/service.js';
import { EVENT_TYPES } from './event-types.js';
import { EVENT_SOURCES, matchesSource } from '../events/source-filter.js';

export const MAX_URL_LENGTH = 2048;

const invalid = (detail: string) => new AppError('validation_failed', detail);

/** An absolute http(s) URL without credentials. */
export function validateUrl(raw: unknown): URL {
  if (typeof raw !== 'string' || raw.trim() === '') throw invalid('url: must be a non-empty string');
  if (raw.length > MAX_URL_LENGTH) throw invalid(`url: must be at most ${MAX_URL_LENGTH} characters`);
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    throw invalid(`url: not a valid absolute URL: "${raw.slice(0, 200)}" (expected e.g. https://example.com/hooks)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw invalid(`url: only http:// and https:// URLs are allowed (got "${url.protocol}")`);
  }
  if (url.username !== '' || url.password !== '') {
    throw invalid('url: must not contain credentials (user:password@); authenticate deliveries by their signature');
  }
  if (url.hostname === '') throw invalid('url: has no host');
  return url;
}

/** `["*"]` alone, or a non-empty list of known types (duplicates dropped, order kept). */
export function validateEvents(raw: unknown): string[] {
  if (!Array.isArray(raw) || raw.length === 0) {
    throw invalid('events: must be a non-empty array of event types, or ["*"] for every type');
  }
  const out: string[] = [];
  for (const t of raw) {
    if (typeof t !== 'string' || t === '') throw invalid('events: every entry must be a non-empty string');
    if (t === '*') {
      if (raw.length !== 1) throw invalid('events: "*" subscribes to every type and must be the only entry');
      return ['*'];
    }
    if (!(EVENT_TYPES as readonly string[]).includes(t)) {
      throw invalid(`events: unknown event type "${t.slice(0, 100)}" (known: ${EVENT_TYPES.join(', ')}; or ["*"])`);
    }
    if (!out.includes(t)) out.push(t);
  }
  return out;
}

export function validateWebhookNamespace(raw: unknown): string | null {
  if (raw === null || raw === undefined) return null;
  return validateNamespaceName(raw);
}

export function validateDescription(raw: unknown): string | null {
  if (raw === null || raw === undefined) return null;
  if (typeof raw !== 'string') throw invalid('description: must be a string or null');
  if (raw.length > 1000) throw invalid('description: must be at most 1000 characters');
  return raw;
}

/** null (any source), or a non-empty list of known data.source values (duplicates dropped, order kept). */
export function validateSources(raw: unknown): string[] | null {
  if (raw === null || raw === undefined) return null;
  if (!Array.isArray(raw) || raw.length === 0) {
    throw invalid(`sources: must be null (any event) or a non-empty array of ${EVENT_SOURCES.join(', ')}`);
  }
  const out: string[] = [];
  for (const s of raw) {
    if (typeof s !== 'string' || !(EVENT_SOURCES as readonly string[]).includes(s)) {
      throw invalid(
        `sources: unknown source ${JSON.stringify(s)?.slice(0, 100)} (known: ${EVENT_SOURCES.join(', ')}; exec: changes made by commands, api: the files API's)`,
      );
    }
    if (!out.includes(s)) out.push(s);
  }
  return out;
}

/** Does an endpoint with this filter receive an event of `type` in `namespace` (with this `data`)? */
export function matches(
  filter: { events: string[]; namespace: string | null; sources?: string[] | null },
  type: string,
  namespace: string | null,
  data: Record<string, unknown> = {},
): boolean {
  if (filter.namespace !== null && filter.namespace !== namespace) return false;
  if (!matchesSource(data, filter.sources ?? null)) return false;
  return filter.events.includes('*') || filter.events.includes(type);
}
