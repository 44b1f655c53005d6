/** Timestamps in the viewer's local time: `HH:MM:SS` for today, `MM-DD HH:MM:SS` for older ones. */

const pad = (n: number) => String(n).padStart(2, '0');

export function formatTimestamp(iso: string | null | undefined, now: Date = new Date()): string {
  if (!iso) return '-';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  const sameDay =
    d.getFullYear() === now.getFullYear() && d.getMonth() === now.getMonth() && d.getDate() === now.getDate();
  return sameDay ? time : `${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${time}`;
}
