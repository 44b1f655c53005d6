// tsc does not set the executable bit: make the package binaries runnable (node_modules/.bin links).
import { chmodSync, existsSync } from 'node:fs';
for (const bin of ['packages/server/dist/bin.js', 'packages/cli/dist/bin.js']) {
  if (existsSync(bin)) chmodSync(bin, 0o755);
}
