/**
 * Hard per-namespace byte limits from the kernel, where the data volume
 * offers them: on btrfs with quotas enabled, each namespace root is a
 * subvolume with a qgroup limit on the bytes it references, so a command
 * that writes past the namespace quota gets EDQUOT from the kernel (answered
 * 507 `over_quota` by the API), not only the measured, soft limit.
 *
 * Elsewhere (ext4, XFS without project quotas, tmpfs…) namespace roots are
 * plain directories and only the measured limit applies (files/service.ts).
 */
import fs from 'node:fs';
import { native } from '../native.js';
import { AT_REMOVEDIR, fstat, sysError } from './sys.js';

export const BTRFS_SUPER_MAGIC = 0x9123683e;
/** The inode number of every btrfs subvolume's root directory. */
const BTRFS_SUBVOL_ROOT_INO = 256;

export type HardQuotaMode = { kind: 'btrfs'; limitBytes: number } | { kind: 'off'; reason: string };

export class HardQuota {
  private state: HardQuotaMode = { kind: 'off', reason: 'not probed yet' };

  constructor(private readonly limitBytes: number) {}

  get mode(): HardQuotaMode {
    return this.state;
  }

  /**
   * Decides the mode for `dir` (a private directory of the data volume): a
   * probe subvolume is created there, limited and removed. Quotas must have
   * been enabled by the operator (`btrfs quota enable <mount>`).
   */
  probe(dir: string): HardQuotaMode {
    if (this.limitBytes <= 0) return (this.state = { kind: 'off', reason: 'no namespace quota (--quota-bytes 0)' });
    const fd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY | fs.constants.O_NOFOLLOW);
    try {
      if (native().fsType(fd) !== BTRFS_SUPER_MAGIC) {
        return (this.state = { kind: 'off', reason: 'the data volume is not btrfs' });
      }
      const name = `quota-probe-${process.pid}`;
      const made = native().btrfsSubvolCreate(fd, name);
      if (made < 0)
        return (this.state = {
          kind: 'off',
          reason: `cannot create btrfs subvolumes (${sysError(made, 'ioctl').code})`,
        });
      try {
        const sub = fs.openSync(
          `${dir}/${name}`,
          fs.constants.O_RDONLY | fs.constants.O_DIRECTORY | fs.constants.O_NOFOLLOW,
        );
        try {
          const rc = native().btrfsQgroupLimit(sub, this.limitBytes);
          if (rc < 0) {
            const code = sysError(rc, 'ioctl').code;
            const why =
              code === 'ENOTCONN' || code === 'ENOENT' || code === 'EINVAL'
                ? 'btrfs quotas are not enabled (btrfs quota enable <mount point>)'
                : `qgroup limit refused (${code})`;
            return (this.state = { kind: 'off', reason: why });
          }
        } finally {
          fs.closeSync(sub);
        }
      } finally {
        // An empty subvolume goes away with rmdir (Linux ≥ 4.18); if not, the scratch sweep of the next start does.
        native().unlinkat(fd, name, AT_REMOVEDIR);
      }
      return (this.state = { kind: 'btrfs', limitBytes: this.limitBytes });
    } finally {
      fs.closeSync(fd);
    }
  }

  /**
   * Creates the namespace root `name` in the server-made directory `parentFd`:
   * a limited subvolume in btrfs mode, else a plain directory. EEXIST is thrown as usual.
   */
  makeRoot(parentFd: number, name: string): void {
    if (this.state.kind === 'btrfs') {
      const rc = native().btrfsSubvolCreate(parentFd, name);
      if (rc < 0) throw sysError(rc, 'btrfs subvolume create');
      return;
    }
    const rc = native().mkdirat(parentFd, name, 0o755);
    if (rc < 0) throw sysError(rc, 'mkdirat');
  }

  /** Sets the limit on an open namespace root when it is a subvolume (roots made before stay soft-limited). */
  applyLimit(rootFd: number): boolean {
    if (this.state.kind !== 'btrfs') return false;
    if (fstat(rootFd).ino !== BTRFS_SUBVOL_ROOT_INO) return false;
    const rc = native().btrfsQgroupLimit(rootFd, this.state.limitBytes);
    if (rc < 0) throw sysError(rc, 'btrfs qgroup limit');
    return true;
  }
}
