/**
 * An AbortController that aborts (with the source's reason) as soon as any of `signals` does, and `dispose()`
 * to remove its listeners once the work it guards is over. Not `AbortSignal.any()`: Node 20 keeps a reference
 * to every combined signal inside a long-lived source (the server's closing signal) until that source aborts,
 * so one per request or attempt grows without bound and drags each call's state into the old generation.
 */
export function linkedAbort(signals: ReadonlyArray<AbortSignal | undefined>): {
  controller: AbortController;
  dispose(): void;
} {
  const controller = new AbortController();
  const sources = signals.filter((s): s is AbortSignal => s !== undefined);
  const stop = (e: Event) => controller.abort((e.target as AbortSignal).reason);
  for (const s of sources) {
    if (s.aborted) {
      controller.abort(s.reason);
      break;
    }
    s.addEventListener('abort', stop, { once: true });
  }
  return {
    controller,
    dispose: () => {
      for (const s of sources) s.removeEventListener('abort', stop);
    },
  };
}
