import { useCallback, useEffect, useId, useRef, useState, type DragEvent } from 'react';
import type { FileEntry } from 'trove-sdk';
import { ConfirmDialog } from '../../components/confirm-dialog';
import { ErrorMessage } from '../../components/error-message';
import { ChooseNamespaceHint, NamespaceBar } from '../../components/namespace-bar';
import { Stamp } from '../../components/stamp';
import { useSession } from '../../context';
import { formatBytes } from '../../lib/bytes';
import { describeError, hasStatus } from '../../lib/errors';
import { uploadFetch } from '../../lib/upload-fetch';
import { ROOT, parentDir } from '../../lib/paths';
import { FilePreview } from './file-preview';
import { FileTree, dirKey, type DirState } from './file-tree';

export function FilesPage() {
  const { namespace } = useSession();
  return (
    <>
      <h1 tabIndex={-1}>Files</h1>
      <NamespaceBar />
      {namespace ? <Browser key={namespace} namespace={namespace} /> : <ChooseNamespaceHint />}
    </>
  );
}

interface Upload {
  id: number;
  name: string;
  path: string;
  loaded: number;
  total: number;
  status: 'uploading' | 'done' | 'error';
  error?: unknown;
}

let uploadSeq = 0;

// A transfer takes as long as its bytes need (the SDK's per-request default suits API calls, not a
// large file on a slow link); an hour, well below the longest delay a browser timer accepts.
const TRANSFER_TIMEOUT_MS = 60 * 60_000;

function Browser({ namespace }: { namespace: string }) {
  const { runtime, runtimeWithFetch } = useSession();
  const trove = runtime(namespace);
  const [dirs, setDirs] = useState<Map<string, DirState>>(() => new Map());
  const [expanded, setExpanded] = useState<Set<string>>(() => new Set([ROOT]));
  const [selected, setSelected] = useState<FileEntry | null>(null);
  const [version, setVersion] = useState(0);
  const [uploads, setUploads] = useState<Upload[]>([]);
  const [dragging, setDragging] = useState(false);
  const [toDelete, setToDelete] = useState<FileEntry | null>(null);
  const [actionError, setActionError] = useState<unknown>(null);
  const [status, setStatus] = useState('');
  const fileInput = useRef<HTMLInputElement>(null);
  const inputId = useId();

  const loadDir = useCallback(
    async (path: string) => {
      setDirs((m) => new Map(m).set(path, { ...m.get(path), loading: true }));
      try {
        const r = await trove.listDir(path);
        setDirs((m) => new Map(m).set(path, { entries: r.entries, truncated: r.truncated, loading: false }));
      } catch (error) {
        // A namespace nobody has used yet has no root directory: show it as empty, not as an error.
        if (path === ROOT && hasStatus(error, 404)) {
          setDirs((m) => new Map(m).set(path, { entries: [], truncated: false, loading: false }));
        } else {
          setDirs((m) => new Map(m).set(path, { loading: false, error }));
        }
      }
    },
    [trove],
  );

  useEffect(() => {
    void loadDir(ROOT);
  }, [loadDir]);

  const currentDir = selected ? (selected.isDir ? dirKey(selected.path) : parentDir(selected.path)) : ROOT;

  const toggleDir = (entry: FileEntry) => {
    const key = dirKey(entry.path);
    setSelected(entry);
    setExpanded((s) => {
      const next = new Set(s);
      if (next.has(key)) next.delete(key);
      else {
        next.add(key);
        if (!dirs.get(key)?.entries) void loadDir(key);
      }
      return next;
    });
  };

  const refresh = () => {
    for (const path of expanded) if (path === ROOT || dirs.has(path)) void loadDir(path);
    setVersion((v) => v + 1);
  };

  const startUploads = (files: File[]) => {
    if (files.length === 0) return;
    const dir = currentDir;
    setActionError(null);
    for (const file of files) {
      const id = ++uploadSeq;
      const path = dir + file.name;
      setUploads((u) => [...u, { id, name: file.name, path, loaded: 0, total: file.size, status: 'uploading' }]);
      const patch = (p: Partial<Upload>) => setUploads((u) => u.map((x) => (x.id === id ? { ...x, ...p } : x)));
      // Its own transport, over XHR, so the bar follows the bytes sent.
      const client = runtimeWithFetch(
        namespace,
        uploadFetch((loaded, total) => patch({ loaded, total: total || file.size })),
      );
      client.upload(path, file, { timeoutMs: TRANSFER_TIMEOUT_MS }).then(
        () => {
          patch({ status: 'done', loaded: file.size });
          setStatus(`Uploaded ${path}.`);
          setExpanded((s) => new Set(s).add(dir));
          void loadDir(dir);
          setVersion((v) => v + 1);
        },
        (error: unknown) => {
          patch({ status: 'error', error });
          setStatus(`Upload of ${file.name} failed: ${describeError(error)}`);
        },
      );
    }
  };

  const download = async (entry: FileEntry) => {
    setActionError(null);
    try {
      const file = await trove.readBytesFull(entry.path, { timeoutMs: TRANSFER_TIMEOUT_MS });
      const blob = new Blob([file.content as Uint8Array<ArrayBuffer>]);
      const url = URL.createObjectURL(blob);
      const a = document.createElement('a');
      a.href = url;
      a.download = entry.name;
      document.body.append(a);
      a.click();
      a.remove();
      // The browser reads the blob asynchronously after click(); revoke once it surely has.
      setTimeout(() => URL.revokeObjectURL(url), 30_000);
      if (file.truncated) {
        setStatus(
          `Downloaded the first ${formatBytes(blob.size)} of ${formatBytes(file.sizeBytes)}: the server caps downloads.`,
        );
      } else setStatus(`Downloaded ${entry.name}.`);
    } catch (error) {
      setActionError(error);
    }
  };

  const remove = async (entry: FileEntry) => {
    await trove.delete(entry.path);
    const key = entry.isDir ? dirKey(entry.path) : entry.path;
    if (selected && (selected.path === entry.path || dirKey(selected.path).startsWith(key))) setSelected(null);
    if (entry.isDir) {
      setExpanded((s) => new Set([...s].filter((p) => !p.startsWith(key))));
      setDirs((m) => new Map([...m].filter(([p]) => !p.startsWith(key))));
    }
    setStatus(`Deleted ${entry.path}.`);
    void loadDir(parentDir(entry.path));
  };

  const isFileDrag = (e: DragEvent) => Array.from(e.dataTransfer.types).includes('Files');

  // Dropping a file anywhere else on the page must not navigate away to show it.
  useEffect(() => {
    const block = (e: globalThis.DragEvent) => e.preventDefault();
    window.addEventListener('dragover', block);
    window.addEventListener('drop', block);
    return () => {
      window.removeEventListener('dragover', block);
      window.removeEventListener('drop', block);
    };
  }, []);

  return (
    <div
      className={`browser${dragging ? ' dragging' : ''}`}
      data-testid="drop-zone"
      onDragEnter={(e) => {
        if (isFileDrag(e)) {
          e.preventDefault();
          setDragging(true);
        }
      }}
      onDragOver={(e) => {
        if (isFileDrag(e)) {
          e.preventDefault();
          e.dataTransfer.dropEffect = 'copy';
        }
      }}
      onDragLeave={(e) => {
        if (!e.currentTarget.contains(e.relatedTarget as Node | null)) setDragging(false);
      }}
      onDrop={(e) => {
        e.preventDefault();
        setDragging(false);
        startUploads(Array.from(e.dataTransfer.files));
      }}
    >
      <div className="toolbar">
        <p className="muted">
          Upload to <span className="mono">{currentDir}</span> — drop files here or
        </p>
        <input
          id={inputId}
          ref={fileInput}
          type="file"
          multiple
          tabIndex={-1}
          aria-label="Files to upload"
          className="visually-hidden"
          data-testid="file-input"
          onChange={(e) => {
            startUploads(Array.from(e.currentTarget.files ?? []));
            e.currentTarget.value = '';
          }}
        />
        <button type="button" className="primary" onClick={() => fileInput.current?.click()}>
          Choose files…
        </button>
        <button type="button" onClick={refresh}>
          Refresh
        </button>
      </div>
      {dragging ? (
        <div className="drop-overlay" aria-hidden="true">
          Drop to upload to {currentDir}
        </div>
      ) : null}
      <p className="visually-hidden" role="status" aria-live="polite">
        {status}
      </p>
      {uploads.length > 0 ? (
        <section className="uploads" aria-label="Uploads">
          <ul>
            {uploads.map((u) => {
              const pct = u.total > 0 ? Math.round((u.loaded / u.total) * 100) : u.status === 'done' ? 100 : 0;
              return (
                <li key={u.id} className={`upload upload-${u.status}`}>
                  <span className="mono upload-name">{u.path}</span>
                  <progress
                    value={u.status === 'done' ? 1 : u.loaded}
                    max={u.status === 'done' ? 1 : Math.max(u.total, 1)}
                    aria-label={`Upload of ${u.name}`}
                  />
                  <span className="upload-status">
                    {u.status === 'uploading' ? `${pct}%` : u.status === 'done' ? 'Done' : describeError(u.error)}
                  </span>
                </li>
              );
            })}
          </ul>
          {uploads.some((u) => u.status !== 'uploading') ? (
            <button type="button" onClick={() => setUploads((u) => u.filter((x) => x.status === 'uploading'))}>
              Clear finished
            </button>
          ) : null}
        </section>
      ) : null}
      <ErrorMessage error={actionError} />
      <div className="browser-panes">
        <nav className="tree-pane" aria-label="File tree">
          <FileTree
            dirs={dirs}
            expanded={expanded}
            selected={selected ? (selected.isDir ? dirKey(selected.path) : selected.path) : null}
            onToggle={toggleDir}
            onSelect={setSelected}
          />
        </nav>
        <section className="preview-pane" aria-label="Details">
          {selected ? (
            <>
              <div className="preview-head">
                <h2 className="mono">
                  {selected.name}
                  {selected.isDir ? '/' : ''}
                </h2>
                <div className="actions">
                  {!selected.isDir ? (
                    <button type="button" onClick={() => download(selected)}>
                      Download
                    </button>
                  ) : null}
                  <button type="button" className="danger" onClick={() => setToDelete(selected)}>
                    Delete
                  </button>
                </div>
              </div>
              <dl className="facts">
                <dt>Path</dt>
                <dd className="mono">{selected.path}</dd>
                {!selected.isDir ? (
                  <>
                    <dt>Size</dt>
                    <dd>{formatBytes(selected.sizeBytes)}</dd>
                  </>
                ) : null}
                <dt>Modified</dt>
                <dd>
                  <Stamp iso={selected.modifiedAt} />
                </dd>
              </dl>
              {selected.isDir ? (
                <p className="muted">Folder. Uploads go here while it is selected.</p>
              ) : (
                <FilePreview trove={trove} path={selected.path} sizeBytes={selected.sizeBytes} version={version} />
              )}
            </>
          ) : (
            <p className="muted">Select a file to preview it.</p>
          )}
        </section>
      </div>
      {toDelete ? (
        <ConfirmDialog
          title={toDelete.isDir ? 'Delete folder?' : 'Delete file?'}
          confirmLabel="Delete"
          danger
          onConfirm={() => remove(toDelete)}
          onClose={() => setToDelete(null)}
        >
          <p>
            <span className="mono">{toDelete.path}</span>
            {toDelete.isDir ? ' and everything inside it' : ''} will be deleted from namespace{' '}
            <strong className="mono">{namespace}</strong>. This cannot be undone (unless a snapshot has it).
          </p>
        </ConfirmDialog>
      ) : null}
    </div>
  );
}
