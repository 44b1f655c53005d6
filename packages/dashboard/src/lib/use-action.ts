import { useCallback, useState } from 'react';

export interface Action {
  /** True while the action runs (disable the button that started it). */
  busy: boolean;
  /** What the last run threw (an API error or a local validation Error), or null. */
  error: unknown;
  setError: (error: unknown) => void;
  /** Runs `action`, catching what it throws into `error` so the form can show it. */
  run: (action: () => Promise<void>) => Promise<void>;
}

/** The state of one user action at a time, such as a form submit. */
export function useAction(): Action {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const run = useCallback(async (action: () => Promise<void>) => {
    setBusy(true);
    setError(null);
    try {
      await action();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }, []);
  return { busy, error, setError, run };
}
