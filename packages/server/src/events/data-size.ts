/**
 * The size bound of an event's `data`. Every event is read back in pages (at
 * most 200 per `GET …/events` page) and pushed over SSE streams and webhooks,
 * so one oversized event must not make a page of many megabytes: an event's
 * data is at most MAX_EVENT_DATA_BYTES of JSON, and a page at most 200 times
 * that (plus the envelopes), about 6.5 MiB.
 *
 * Emitters keep their own data well under the bound (exec.completed stores the
 * first 4 KiB of the command and 1 KiB of stdout). The bound is the backstop:
 * larger data is cut, never refused (the mutation it records has happened),
 * and says so: its longest string fields are shortened and `data_truncated:
 * true` and `data_bytes` (the size of the full data's JSON) are added. Data
 * whose bulk is not in strings is replaced by those two fields alone.
 */

/** Largest JSON of one event's `data`, in UTF-8 bytes (docs/webhooks.md, "Event size"). */
export const MAX_EVENT_DATA_BYTES = 32 * 1024;

/** The first `max` bytes of `text` as UTF-8, cut at a character boundary (never half a character). */
export function utf8Head(text: string, max: number): string {
  // Every UTF-16 unit is at least one UTF-8 byte: no need to encode more than `max` units.
  const buf = Buffer.from(text.length > max ? text.slice(0, max) : text, 'utf8');
  if (buf.length <= max) return text.length > max ? buf.toString('utf8') : text;
  let end = max;
  // A continuation byte (10xxxxxx) just past the cut means its character started before the cut: drop it whole.
  while (end > 0 && (buf[end]! & 0xc0) === 0x80) end--;
  return buf.toString('utf8', 0, end);
}

/** UTF-8 size of a JSON text; the length check spares the encoding for the common small event. */
function jsonBytes(json: string, max: number): number {
  return json.length * 3 <= max ? json.length : Buffer.byteLength(json, 'utf8');
}

/** `data` as stored: its JSON, cut to at most `max` bytes as described above. */
export function boundEventData(data: Record<string, unknown>, max = MAX_EVENT_DATA_BYTES): string {
  const json = JSON.stringify(data);
  const size = jsonBytes(json, max);
  if (size <= max) return json;
  const out: Record<string, unknown> = { ...data, data_truncated: true, data_bytes: size };
  for (;;) {
    const text = JSON.stringify(out);
    const bytes = Buffer.byteLength(text, 'utf8');
    if (bytes <= max) return text;
    let longest: string | null = null;
    let longestBytes = 0;
    for (const [k, v] of Object.entries(out)) {
      if (typeof v !== 'string') continue;
      const b = Buffer.byteLength(v, 'utf8');
      if (b > longestBytes) {
        longest = k;
        longestBytes = b;
      }
    }
    if (longest === null) break;
    // Escapes make a field's JSON up to 6 bytes per byte: cut in proportion, and go round again if the
    // escapes were not spread evenly. `keep` is always below longestBytes, so this ends.
    const fieldJson = Buffer.byteLength(JSON.stringify(out[longest]), 'utf8') - 2;
    const keep = Math.max(0, Math.floor(((fieldJson - (bytes - max)) * longestBytes) / fieldJson));
    out[longest] = utf8Head(out[longest] as string, keep);
  }
  return JSON.stringify({ data_truncated: true, data_bytes: size });
}

/** Whether a stored data JSON text is within the bound (rows written before the bound existed may not be). */
export function withinBound(json: string, max = MAX_EVENT_DATA_BYTES): boolean {
  return jsonBytes(json, max) <= max;
}
