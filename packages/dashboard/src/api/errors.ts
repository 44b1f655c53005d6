/** An API answer that was not 2xx, carrying the server's readable `detail`. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string | null;
  readonly detail: string;

  constructor(status: number, detail: string, code: string | null) {
    super(detail);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.detail = detail;
  }
}

/** The request never got an HTTP answer (server down, network gone). */
export class NetworkError extends Error {
  constructor(cause: unknown) {
    super('Could not reach the Trove server. Check that it is running and try again.', { cause });
    this.name = 'NetworkError';
  }
}

/** Builds an ApiError from a failed response, tolerating bodies that are not the documented JSON. */
export async function errorFromResponse(res: Response): Promise<ApiError> {
  const text = await res.text().catch(() => '');
  return errorFromBody(res.status, text, res.statusText);
}

export function errorFromBody(status: number, text: string, statusText = ''): ApiError {
  let detail = '';
  let code: string | null = null;
  try {
    const body = JSON.parse(text) as { detail?: unknown; code?: unknown };
    if (typeof body.detail === 'string') detail = body.detail;
    // FastAPI-style validation errors carry a list; show their messages rather than "[object Object]".
    else if (Array.isArray(body.detail)) {
      detail = body.detail
        .map((d: { msg?: unknown }) => (typeof d?.msg === 'string' ? d.msg : JSON.stringify(d)))
        .join('; ');
    }
    if (typeof body.code === 'string') code = body.code;
  } catch {
    // Not JSON (a proxy's HTML page, an empty body): fall back to the status line below.
  }
  if (!detail) detail = `${status} ${statusText || 'Request failed'}`.trim();
  return new ApiError(status, detail, code);
}

export function isAbort(err: unknown): boolean {
  return err instanceof DOMException && err.name === 'AbortError';
}

/** A message fit for the page, whatever was thrown. */
export function describeError(err: unknown): string {
  if (err instanceof ApiError || err instanceof NetworkError) return err.message;
  if (err instanceof Error) return err.message;
  return String(err);
}
