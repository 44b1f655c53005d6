import { readFileSync } from 'node:fs';

/** Whether a process id is taken: signal 0 checks without sending; EPERM means alive, someone else's. */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The fields of `/proc/<pid>/stat` after the command name (state first, then the parent's pid, …), or null
 * when the process is gone. The name may hold spaces and parentheses: the fields start after the last ')'.
 */
export function procStat(pid: number): string[] | null {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}
