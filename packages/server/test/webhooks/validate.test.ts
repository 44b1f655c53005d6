import { describe, expect, it } from 'vitest';
import { AppError } from '../../src/errors.js';
import {
  matches,
  validateDescription,
  validateEvents,
  validateUrl,
  validateWebhookNamespace,
} from '../../src/webhooks/validate.js';

function failure(fn: () => unknown): { status: number; code: string; detail: string } {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(AppError);
    const e = err as AppError;
    return { status: e.status, code: e.code, detail: e.detail };
  }
  throw new Error('expected a failure');
}

describe('validateUrl', () => {
  it('accepts http and https URLs', () => {
    expect(validateUrl('https://example.com/hooks?x=1').href).toBe('https://example.com/hooks?x=1');
    expect(validateUrl(' http://127.0.0.1:8000/h ').href).toBe('http://127.0.0.1:8000/h');
  });

  it.each([
    ['ftp://example.com/x', 'url: only http:// and https:// URLs are allowed (got "ftp:")'],
    ['file:///etc/passwd', 'url: only http:// and https:// URLs are allowed (got "file:")'],
    ['javascript:alert(1)', 'url: only http:// and https:// URLs are allowed (got "javascript:")'],
    [
      'example.com/hooks',
      'url: not a valid absolute URL: "example.com/hooks" (expected e.g. https://example.com/hooks)',
    ],
    ['', 'url: must be a non-empty string'],
    [
      'https://user:pw@example.com/',
      'url: must not contain credentials (user:password@); authenticate deliveries by their signature',
    ],
    ['https://example.com/' + 'a'.repeat(2100), 'url: must be at most 2048 characters'],
  ])('refuses %s', (url, detail) => {
    expect(failure(() => validateUrl(url))).toEqual({ status: 422, code: 'validation_failed', detail });
  });
});

describe('validateEvents', () => {
  it('accepts ["*"] and known types, dropping duplicates', () => {
    expect(validateEvents(['*'])).toEqual(['*']);
    expect(validateEvents(['file.written', 'key.created', 'file.written'])).toEqual(['file.written', 'key.created']);
  });

  it.each([
    [[], 'events: must be a non-empty array of event types, or ["*"] for every type'],
    ['*', 'events: must be a non-empty array of event types, or ["*"] for every type'],
    [['*', 'file.written'], 'events: "*" subscribes to every type and must be the only entry'],
    [['file.written', '*'], 'events: "*" subscribes to every type and must be the only entry'],
    [[''], 'events: every entry must be a non-empty string'],
    [[3], 'events: every entry must be a non-empty string'],
  ])('refuses %j', (events, detail) => {
    expect(failure(() => validateEvents(events))).toEqual({ status: 422, code: 'validation_failed', detail });
  });

  it('names an unknown type and lists the known ones', () => {
    const f = failure(() => validateEvents(['file.writen']));
    expect(f.status).toBe(422);
    expect(f.detail).toMatch(
      /^events: unknown event type "file.writen" \(known: file.written, file.deleted, .*webhook.test; or \["\*"\]\)$/,
    );
  });
});

describe('namespace and description', () => {
  it('validates names like the rest of the API (400)', () => {
    expect(validateWebhookNamespace(null)).toBeNull();
    expect(validateWebhookNamespace('team-a')).toBe('team-a');
    expect(failure(() => validateWebhookNamespace('..')).status).toBe(400);
    expect(failure(() => validateWebhookNamespace('a/b')).code).toBe('namespace_invalid');
  });

  it('bounds the description', () => {
    expect(validateDescription('prod receiver')).toBe('prod receiver');
    expect(failure(() => validateDescription('x'.repeat(1001))).detail).toBe(
      'description: must be at most 1000 characters',
    );
  });
});

describe('matches', () => {
  it('filters by type and namespace; "*" matches every type, including unknown ones', () => {
    expect(matches({ events: ['*'], namespace: null }, 'anything.new', null)).toBe(true);
    expect(matches({ events: ['file.written'], namespace: null }, 'file.deleted', 'a')).toBe(false);
    expect(matches({ events: ['file.written'], namespace: 'a' }, 'file.written', 'a')).toBe(true);
    expect(matches({ events: ['*'], namespace: 'a' }, 'file.written', 'b')).toBe(false);
    expect(matches({ events: ['*'], namespace: 'a' }, 'key.created', null)).toBe(false);
  });
});
