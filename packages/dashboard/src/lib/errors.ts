import { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } from 'trove-sdk';

/** True when the user (or the page, leaving) stopped the request: nothing to report. */
export function isAbort(err: unknown): boolean {
  return err instanceof APIUserAbortError || (err instanceof DOMException && err.name === 'AbortError');
}

/** True when the server answered with this status. */
export function hasStatus(err: unknown, status: number): err is APIError {
  return err instanceof APIError && err.status === status;
}

/** A message fit for the page, whatever was thrown: the server's `detail` for API errors. */
export function describeError(err: unknown): string {
  if (err instanceof APIError) return err.detail ?? err.message;
  // fetch itself failed (server down, network gone): the SDK's message would show the URL and the browser's words.
  if (
    err instanceof APIConnectionError &&
    !(err instanceof APIConnectionTimeoutError) &&
    err.cause instanceof TypeError
  ) {
    return 'Could not reach the Trove server, or the connection was lost. Check that it is running and try again.';
  }
  if (err instanceof Error) return err.message;
  return String(err);
}
