import type { FileEntry } from 'trove-sdk';
import { describeError } from '../../lib/errors';
import { formatBytes } from '../../lib/bytes';

export interface DirState {
  entries?: FileEntry[];
  truncated?: boolean;
  loading: boolean;
  error?: unknown;
}

interface Props {
  dirs: Map<string, DirState>;
  expanded: Set<string>;
  selected: string | null;
  onToggle: (entry: FileEntry) => void;
  onSelect: (entry: FileEntry) => void;
}

/**
 * The namespace as nested lists of buttons. Buttons keep it fully usable with Tab/Enter/Space
 * and screen readers hear each folder's expanded state.
 */
export function FileTree(props: Props) {
  return <DirEntries {...props} path="workspace/" depth={0} />;
}

function DirEntries(props: Props & { path: string; depth: number }) {
  const { dirs, expanded, selected, onToggle, onSelect, path, depth } = props;
  const state = dirs.get(path);
  if (!state || (state.loading && !state.entries)) {
    return (
      <p className="tree-note" role="status">
        Loading…
      </p>
    );
  }
  if (state.error) {
    return (
      <p className="tree-note error" role="alert">
        {describeError(state.error)}
      </p>
    );
  }
  const entries = state.entries ?? [];
  if (entries.length === 0) {
    return (
      <p className="tree-note muted">{depth === 0 ? 'No files yet. Drop some here to upload.' : 'Empty folder'}</p>
    );
  }
  return (
    <ul className={depth === 0 ? 'tree' : 'tree-children'} aria-label={depth === 0 ? 'Files' : undefined}>
      {entries.map((e) => {
        const key = e.isDir ? dirKey(e.path) : e.path;
        const isOpen = e.isDir && expanded.has(key);
        const isSelected = selected === key;
        return (
          <li key={key}>
            <button
              type="button"
              className={`tree-item${isSelected ? ' selected' : ''}`}
              aria-expanded={e.isDir ? isOpen : undefined}
              aria-current={isSelected ? 'true' : undefined}
              onClick={() => (e.isDir ? onToggle(e) : onSelect(e))}
              title={e.path}
            >
              <span className={`tree-icon ${e.isDir ? (isOpen ? 'dir-open' : 'dir') : 'file'}`} aria-hidden="true" />
              <span className="tree-name">{e.name}</span>
              {!e.isDir ? <span className="tree-size muted">{formatBytes(e.sizeBytes)}</span> : null}
            </button>
            {isOpen ? <DirEntries {...props} path={key} depth={depth + 1} /> : null}
          </li>
        );
      })}
      {state.truncated ? <li className="tree-note muted">Listing truncated by the server.</li> : null}
    </ul>
  );
}

export function dirKey(path: string): string {
  return path.endsWith('/') ? path : `${path}/`;
}
