import { useId, type FormEvent, type ReactNode } from 'react';

/** A titled form in a card, named by its heading for screen readers; the page validates, not the browser. */
export function FormCard({
  title,
  onSubmit,
  children,
}: {
  title: string;
  onSubmit: (e: FormEvent) => void;
  children: ReactNode;
}) {
  const id = useId();
  return (
    <form className="card" onSubmit={onSubmit} aria-labelledby={id} noValidate>
      <h2 id={id}>{title}</h2>
      {children}
    </form>
  );
}
