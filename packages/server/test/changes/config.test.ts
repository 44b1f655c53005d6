/** The change-tracking settings: defaults, flags, and a bad value refused at start with the reason. */
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';

describe('change tracking settings', () => {
  it('default to auto, 1,000 paths per command, 100 ms windows, 20,000 scanned entries', () => {
    expect(loadConfig({}).changes).toEqual({ mode: 'auto', maxPerCommand: 1000, windowMs: 100, scanMaxFiles: 20_000 });
  });

  it('are read from the environment and from flags', () => {
    expect(loadConfig({ TROVE_CHANGES: 'scan', TROVE_CHANGES_MAX_PER_COMMAND: '50' }).changes).toMatchObject({
      mode: 'scan',
      maxPerCommand: 50,
    });
    expect(loadConfig({}, ['--changes', 'off', '--changes-window-ms', '250']).changes).toMatchObject({
      mode: 'off',
      windowMs: 250,
    });
  });

  it('refuse what cannot work, saying what is accepted', () => {
    expect(() => loadConfig({ TROVE_CHANGES: 'inotify' })).toThrow(
      'TROVE_CHANGES must be auto, fanotify, scan or off, got "inotify"',
    );
    expect(() => loadConfig({ TROVE_CHANGES_MAX_PER_COMMAND: '0' })).toThrow(
      'TROVE_CHANGES_MAX_PER_COMMAND must be at least 1, got 0',
    );
    expect(() => loadConfig({ TROVE_CHANGES_WINDOW_MS: '5' })).toThrow(
      'TROVE_CHANGES_WINDOW_MS must be 10-60000, got 5',
    );
    expect(() => loadConfig({ TROVE_CHANGES_SCAN_MAX_FILES: '0' })).toThrow(
      'TROVE_CHANGES_SCAN_MAX_FILES must be at least 1, got 0',
    );
  });
});
