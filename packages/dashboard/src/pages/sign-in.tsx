import { useState, type FormEvent } from 'react';
import { AuthenticationError, type Identity } from 'trove-sdk';
import { ErrorMessage } from '../components/error-message';
import { createClients } from '../lib/trove';

/** Asks for an API key and checks it with GET /v1/me before keeping it. */
export function SignIn({ onSignedIn, notice }: { onSignedIn: (key: string, me: Identity) => void; notice?: string }) {
  const [key, setKey] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const trimmed = key.trim();
    if (!trimmed) {
      setError(new Error('Enter an API key.'));
      return;
    }
    setBusy(true);
    setError(null);
    try {
      const me = await createClients({ apiKey: trimmed }).trove.me();
      onSignedIn(trimmed, me);
    } catch (err) {
      setError(
        err instanceof AuthenticationError
          ? new Error(`${err.detail ?? 'Invalid API key'}. Check the key and try again.`)
          : err,
      );
      setBusy(false);
    }
  };

  return (
    <main className="signin" id="main">
      <form className="card signin-card" onSubmit={submit} aria-labelledby="signin-title" noValidate>
        <div className="brand brand-large" aria-hidden="true">
          <img src={`${import.meta.env.BASE_URL}favicon.svg`} alt="" width="40" height="40" />
          <span>Trove</span>
        </div>
        <h1 id="signin-title">Sign in</h1>
        <p className="muted">
          Use an API key of your workspace. Admin keys manage keys and webhooks; workspace keys browse files, run
          commands and take snapshots.
        </p>
        {notice ? (
          <p className="notice" role="status">
            {notice}
          </p>
        ) : null}
        <label htmlFor="api-key">API key</label>
        <input
          id="api-key"
          name="api-key"
          type="password"
          className="mono"
          autoComplete="off"
          spellCheck={false}
          placeholder="trove-sk-…"
          value={key}
          onChange={(e) => setKey(e.target.value)}
          aria-invalid={error ? true : undefined}
          aria-describedby="api-key-help"
          autoFocus
        />
        <p id="api-key-help" className="muted small">
          The key is kept in this tab only (session storage) and removed when you sign out.
        </p>
        <ErrorMessage error={error} />
        <button type="submit" className="primary" disabled={busy}>
          {busy ? 'Checking…' : 'Sign in'}
        </button>
      </form>
    </main>
  );
}
