/**
 * One error path for every route: AppError → its status and `{detail, code}`;
 * schema failures → 422; malformed JSON → 400; anything else is logged with
 * the request id and answered with a generic 500 (driver, fs and sandbox
 * messages never reach the client).
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError, isAppError } from '../errors.js';
import { isDatabaseUnavailable } from '../db/errors.js';
import { storageErrorFor } from '../tree/storage.js';

export function sendError(reply: FastifyReply, err: AppError): FastifyReply {
  if (err.retryAfter !== undefined) reply.header('retry-after', String(err.retryAfter));
  return reply.code(err.status).type('application/json; charset=utf-8').send({ detail: err.detail, code: err.code });
}

function describeValidation(err: FastifyError): string {
  const v = err.validation?.[0];
  if (!v) return err.message;
  const where = err.validationContext ?? 'body';
  const field = (v.instancePath || '').replace(/^\//, '').replace(/\//g, '.');
  const missing = (v.params as { missingProperty?: string })?.missingProperty;
  if (missing) return `${where}: missing required field "${missing}"`;
  return `${where}${field ? ` field "${field}"` : ''} ${v.message ?? 'is invalid'}`;
}

export function registerErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    if (isAppError(error)) return sendError(reply, error);
    if (error.validation) {
      return sendError(reply, new AppError('validation_failed', describeValidation(error)));
    }
    const status = error.statusCode ?? 500;
    if (error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      return sendError(
        reply,
        new AppError('unsupported_media_type', 'Unsupported Content-Type: send application/json'),
      );
    }
    if (error.code === 'FST_ERR_CTP_EMPTY_JSON_BODY') {
      return sendError(reply, new AppError('bad_request', 'Request body is empty: send a JSON object'));
    }
    if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return sendError(reply, new AppError('payload_too_large', 'Request body is too large'));
    }
    if (status >= 400 && status < 500) {
      const code =
        status === 413
          ? 'payload_too_large'
          : status === 415
            ? 'unsupported_media_type'
            : status === 404
              ? 'not_found'
              : 'bad_request';
      const detail =
        error instanceof SyntaxError || error.code === 'FST_ERR_CTP_INVALID_JSON_BODY'
          ? `Malformed JSON body: ${error.message}`
          : error.message;
      return sendError(reply, new AppError(code, detail, { status }));
    }
    // A full disk (or an exhausted disk quota) is the tenant's or the operator's to fix: 507, never 500.
    const storage = storageErrorFor(error);
    if (storage) return sendError(reply, storage);
    if (isDatabaseUnavailable(error)) {
      // Never a wrong answer while the database is away: 503 and let the pool reconnect.
      request.log.warn({ err: error }, 'database unavailable');
      return sendError(
        reply,
        new AppError('unavailable', 'The database is unavailable; retry shortly', { retryAfter: 5 }),
      );
    }
    request.log.error({ err: error }, 'unhandled error');
    return sendError(reply, new AppError('internal_error', `Internal server error (request id ${request.id})`));
  });

  app.setNotFoundHandler((request, reply) => {
    sendError(reply, new AppError('not_found', `Not found: ${request.method} ${request.url.split('?')[0]}`));
  });
}
