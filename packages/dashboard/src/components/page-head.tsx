import type { ReactNode } from 'react';

/**
 * A heading with a Refresh button beside it. Page titles (level 1) take focus after in-app
 * navigation (see app.tsx), so they are focusable; section titles are not.
 */
export function PageHead({
  title,
  level = 1,
  refresh,
  refreshLabel = 'Refresh',
}: {
  title: ReactNode;
  level?: 1 | 2 | 3;
  refresh: { reload: () => void; loading: boolean };
  refreshLabel?: string;
}) {
  const Heading = `h${level}` as const;
  return (
    <div className="page-head">
      <Heading tabIndex={level === 1 ? -1 : undefined}>{title}</Heading>
      <button type="button" onClick={refresh.reload} disabled={refresh.loading}>
        {refreshLabel}
      </button>
    </div>
  );
}
