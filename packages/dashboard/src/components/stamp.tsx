import { formatFull, formatStamp } from '../lib/time';

/** A short local timestamp with the full date in its tooltip and machine-readable datetime. */
export function Stamp({ iso }: { iso: string | null | undefined }) {
  if (!iso) return <span className="muted">—</span>;
  return (
    <time dateTime={iso} title={formatFull(iso)}>
      {formatStamp(iso)}
    </time>
  );
}
