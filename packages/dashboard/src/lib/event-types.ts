/**
 * Every event type the server emits, for filters and webhook subscriptions: the server's own
 * list, bundled at build time, so the dashboard can never offer a type the server rejects.
 */
export { EVENT_TYPES } from '../../../server/src/webhooks/event-types';
