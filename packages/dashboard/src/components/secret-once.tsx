import { useId, useRef, useState } from 'react';

/**
 * Shows a secret the server will never return again, with a copy button. Falls back to
 * selecting the text when the Clipboard API is unavailable (e.g. a non-secure origin).
 */
export function SecretOnce({ label, secret, onDone }: { label: string; secret: string; onDone: () => void }) {
  const [status, setStatus] = useState('');
  const inputRef = useRef<HTMLInputElement>(null);
  const id = useId();

  const copy = async () => {
    try {
      await navigator.clipboard.writeText(secret);
      setStatus('Copied to the clipboard.');
    } catch {
      inputRef.current?.select();
      setStatus('Copy is blocked here: the text is selected, press Ctrl+C (⌘C).');
    }
  };

  return (
    <section className="secret" aria-labelledby={`${id}-h`}>
      <h3 id={`${id}-h`}>{label}</h3>
      <p>
        <strong>Copy it now.</strong> It is shown only once and cannot be retrieved later.
      </p>
      <div className="secret-row">
        <label htmlFor={id} className="visually-hidden">
          {label}
        </label>
        <input
          id={id}
          ref={inputRef}
          className="mono"
          readOnly
          value={secret}
          onFocus={(e) => e.currentTarget.select()}
          data-testid="secret-value"
        />
        <button type="button" className="primary" onClick={copy}>
          Copy
        </button>
        <button type="button" onClick={onDone}>
          Done
        </button>
      </div>
      <p className="muted" role="status">
        {status}
      </p>
    </section>
  );
}
