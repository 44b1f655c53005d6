import { useEffect, useId, useState, type FormEvent } from 'react';
import type { Namespace } from 'trove-sdk';
import { useSession } from '../context';
import { namespaceProblem } from '../lib/paths';

/**
 * Shows which namespace a runtime page acts on and lets workspace keys switch. Any valid name
 * is accepted: a namespace exists from its first use.
 */
export function NamespaceBar({
  onOpen,
  openLabel = 'Open',
}: { onOpen?: (ns: string) => void; openLabel?: string } = {}) {
  const { trove, namespace, namespaceLocked, setNamespace } = useSession();
  const [known, setKnown] = useState<Namespace[]>([]);
  const [value, setValue] = useState(namespace ?? '');
  const [problem, setProblem] = useState<string | null>(null);
  const id = useId();

  useEffect(() => setValue(namespace ?? ''), [namespace]);

  useEffect(() => {
    if (namespaceLocked) return;
    const ctrl = new AbortController();
    // Suggestions only: a failure here must not block typing a name.
    trove.namespaces.list({ signal: ctrl.signal }).then(setKnown, () => {});
    return () => ctrl.abort();
  }, [trove, namespaceLocked]);

  if (namespaceLocked) {
    return (
      <p className="ns-bar">
        Namespace <strong className="mono">{namespace}</strong>{' '}
        <span className="muted">(this key is locked to it)</span>
      </p>
    );
  }

  const submit = (e: FormEvent) => {
    e.preventDefault();
    const name = value.trim();
    const p = namespaceProblem(name);
    setProblem(p);
    if (!p) (onOpen ?? setNamespace)(name);
  };

  return (
    <form className="ns-bar" onSubmit={submit} aria-label="Choose namespace">
      <label htmlFor={id}>Namespace</label>
      <input
        id={id}
        className="mono"
        list={`${id}-list`}
        value={value}
        onChange={(e) => setValue(e.target.value)}
        placeholder="e.g. default"
        aria-invalid={problem ? true : undefined}
        aria-describedby={problem ? `${id}-err` : undefined}
        autoComplete="off"
        spellCheck={false}
      />
      <datalist id={`${id}-list`}>
        {known.map((n) => (
          <option key={n.name} value={n.name} />
        ))}
      </datalist>
      <button type="submit">{openLabel}</button>
      {problem ? (
        <span id={`${id}-err`} className="error inline" role="alert">
          {problem}
        </span>
      ) : null}
    </form>
  );
}

/** Shown by runtime pages before a namespace is chosen. */
export function ChooseNamespaceHint() {
  return <p className="notice">Choose a namespace above (or pick one on the Namespaces page) to continue.</p>;
}
