/**
 * Type test of the published declarations: resolves `trove-sdk` through package.json
 * `exports` to dist/*.d.ts, with no @types/node (as on edge runtimes). Run by
 * types.test.ts with `tsc --noEmit`; every `@ts-expect-error` must still be an error.
 */
import {
  APIError,
  RateLimitError,
  TroveAdminClient,
  TroveClient,
  TroveExecError,
  WebhookSignatureError,
  createWorkspace,
  verifyWebhook,
  verifyWebhookAsync,
  generateTestHeader,
  type ApiKey,
  type CreatedApiKey,
  type CreatedWebhook,
  type DirListing,
  type Event,
  type EventData,
  type EventPage,
  type EventType,
  type ExecResult,
  type ExecStreamEvent,
  type ExitReason,
  type FileBytes,
  type FileContent,
  type FileStream,
  type Identity,
  type Namespace,
  type OutputChunk,
  type Process,
  type ProcessOutput,
  type ProcessStreamEvent,
  type Snapshot,
  type TroveEvent,
  type ChangeAttribution,
  type UploadProgress,
  type Webhook,
  type WebhookDelivery,
  type WebhookDeliveryDetail,
  type WebhookEvent,
  type WebhookTestResult,
  type WorkspaceSummary,
  type WriteResult,
} from 'trove-sdk';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
function assertType<T extends true>(): T | void {}
declare function is<T>(value: T): void;

export async function client(): Promise<void> {
  const trove = new TroveClient({
    apiKey: 'k',
    namespace: 'ns',
    baseUrl: 'http://x',
    timeoutMs: 1,
    maxRetries: 0,
    fetch,
  });
  new TroveClient();
  // @ts-expect-error unknown option
  new TroveClient({ apiKeys: 'k' });

  assertType<Equal<Awaited<ReturnType<typeof trove.exec>>, string>>();
  assertType<Equal<Awaited<ReturnType<typeof trove.execDetailed>>, ExecResult>>();
  assertType<
    Equal<ExecResult, { exitCode: number; stdout: string; stderr: string; durationMs: number; exitReason?: ExitReason }>
  >();
  assertType<Equal<Awaited<ReturnType<typeof trove.execChain>>, string>>();
  is<string>(await trove.exec('ls', { stdin: 'x', signal: new AbortController().signal, timeoutMs: 5 }));
  // @ts-expect-error command must be a string
  await trove.exec(42);
  // @ts-expect-error stdin is text
  await trove.exec('cat', { stdin: new Uint8Array() });
  for await (const e of trove.exec.stream('ls', { stdin: 'x', signal: AbortSignal.timeout(1) })) {
    is<ExecStreamEvent>(e);
    if (e.type === 'exit') {
      is<number>(e.exitCode);
      is<ExitReason>(e.exitReason);
      is<{ detail: string; code: string } | undefined>(e.error);
      // @ts-expect-error the exit carries no bytes
      is<Uint8Array>(e.data);
    } else {
      is<'stdout' | 'stderr'>(e.type);
      is<Uint8Array>(e.data);
      is<string>(e.text);
      is<number>(e.offset);
    }
  }
  // @ts-expect-error command must be a string
  trove.exec.stream(1);

  const proc: Process = await trove.processes.start('sleep 1', {
    stdin: 'x',
    closeStdin: true,
    processTimeoutMs: 1000,
    env: { A: '1' },
  });
  assertType<Equal<Process['state'], 'running' | 'exited'>>();
  is<number | null>(proc.exitCode);
  is<ExitReason | null>(proc.exitReason);
  // @ts-expect-error the request timeout and the process's limit are different options
  await trove.processes.start('x', { processTimeoutMs: '1s' });
  is<Process[]>(await trove.processes.list({ state: 'running', limit: 10 }));
  // @ts-expect-error not a process state
  await trove.processes.list({ state: 'zombie' });
  is<Process>(await trove.processes.get(proc.processId));
  const out: ProcessOutput = await trove.processes.output(proc.processId, { stream: 'stderr', offset: 0, limit: 10 });
  is<Uint8Array>(out.data);
  is<string>(out.text);
  is<boolean>(out.eof);
  is<number>(out.nextOffset);
  for await (const e of trove.processes.stream(proc.processId, {
    stdoutOffset: 1,
    stderrOffset: 2,
    lastEventId: '1:2',
    maxReconnects: 0,
  })) {
    is<ProcessStreamEvent>(e);
    if (e.type === 'exit') is<Process>(e.process);
    else is<OutputChunk>(e);
  }
  is<{ processId: string; written: number; stdinOpen: boolean }>(
    await trove.processes.writeStdin(proc.processId, 'text', { close: true }),
  );
  await trove.processes.writeStdin(proc.processId, new Uint8Array([1]));
  is<{ processId: string; stdinOpen: false }>(await trove.processes.closeStdin(proc.processId));
  is<boolean>((await trove.processes.signal(proc.processId)).delivered);
  await trove.processes.signal(proc.processId, 'SIGKILL');
  // @ts-expect-error not a signal the server sends
  await trove.processes.signal(proc.processId, 'SIGSEGV');
  is<Process>(await trove.processes.wait(proc.processId, { maxWaitMs: 5000 }));

  is<WriteResult>(await trove.write('a', 'text'));
  // @ts-expect-error write takes text; bytes go through upload()
  await trove.write('a', new Uint8Array());
  const progress: UploadProgress[] = [];
  is<WriteResult>(await trove.upload('a', new Uint8Array(), { onProgress: (p) => progress.push(p), size: 3 }));
  await trove.upload('a', 'text');
  await trove.upload('a', new Blob([]));
  await trove.upload('a', new ArrayBuffer(1));
  await trove.upload('a', new ReadableStream<Uint8Array>());
  await trove.upload(
    'a',
    (async function* () {
      yield new Uint8Array();
    })(),
  );
  // @ts-expect-error numbers are not uploadable
  await trove.upload('a', 42);
  is<number | undefined>(progress[0]!.total);

  is<Uint8Array>(await trove.readBytes('a'));
  is<FileBytes>(await trove.readBytesFull('a'));
  assertType<Equal<FileBytes, { content: Uint8Array; truncated: boolean; sizeBytes: number; etag?: string }>>();
  is<string>(await trove.readText('a'));
  is<FileStream>(await trove.readStream('a'));
  is<FileContent>(await trove.readFile('a'));
  assertType<Equal<FileContent['encoding'], 'utf-8' | 'binary'>>();
  assertType<Equal<FileContent['content'], string | null>>();
  is<DirListing>(await trove.listDir());
  const listing = await trove.listDir('dir', { recursive: true });
  is<DirListing>(listing);
  assertType<Equal<(typeof listing.entries)[number]['sizeBytes'], number | null>>();
  is<{ deleted: string }>(await trove.delete('a'));
  is<Identity>(await trove.me());
  assertType<Equal<Identity['scope'], 'admin' | 'workspace'>>();
  is<TroveClient>(trove.withNamespace('other'));
  is<string | null>(await trove.getInit());
  is<WriteResult>(await trove.setInit('export A=1'));
  is<boolean>(await trove.clearInit());
  const summary: WorkspaceSummary = await trove.bootstrap();
  is<string>(summary.asSystemPromptBlock());
  is<number>(summary.fileCount);

  is<Snapshot>(await trove.snapshots.create({ label: 'x' }));
  await trove.snapshots.create();
  // @ts-expect-error the label goes in an object
  await trove.snapshots.create('label');
  is<Snapshot[]>(await trove.snapshots.list());
  is<{ filesRestored: number }>(await trove.snapshots.restore('snap-1'));
  is<{ snapshotId: string; deleted: true }>(await trove.snapshots.delete('snap-1'));
  const archive = await trove.snapshots.export('snap-1');
  is<ReadableStream<Uint8Array>>(archive.body);
  is<number | null>(archive.sizeBytes);
  for await (const chunk of archive) is<Uint8Array>(chunk);
  is<Snapshot>(await trove.snapshots.import(new Uint8Array(0), { label: 'x', contentType: 'application/x-tar' }));
  // @ts-expect-error an archive is a tar, gzip'd or not
  await trove.snapshots.import(new Uint8Array(0), { contentType: 'text/plain' });

  const page: EventPage = await trove.events.list({
    since: new Date(),
    types: ['file.written'],
    namespace: 'n',
    limit: 5,
    cursor: 'c',
  });
  is<TroveEvent[]>(page.events);
  is<string | null>(page.nextCursor);
  for await (const e of trove.events.list()) is<TroveEvent>(e);
  for await (const e of trove.events.tail({ types: ['exec.completed'], signal: AbortSignal.timeout(1) })) {
    if (e.type === 'exec.completed') {
      is<number>(e.data.exitCode);
      // @ts-expect-error narrowing: exec events have no path
      is<string>(e.data.path);
    }
  }
  for await (const e of trove.events.stream({
    onConnected: () => {},
    types: ['file.written'],
    namespace: 'n',
    heartbeatSeconds: 5,
  })) {
    is<TroveEvent>(e);
  }
  is<Namespace[]>(await trove.namespaces.list());
}

export function events(e: Event): void {
  assertType<Equal<Event, TroveEvent>>();
  assertType<Equal<WebhookEvent, TroveEvent>>();
  assertType<
    Equal<
      EventType,
      | 'file.written'
      | 'file.deleted'
      | 'dir.created'
      | 'dir.deleted'
      | 'files.changed'
      | 'exec.completed'
      | 'process.started'
      | 'process.exited'
      | 'snapshot.created'
      | 'snapshot.restored'
      | 'snapshot.deleted'
      | 'namespace.deleted'
      | 'workspace.created'
      | 'key.created'
      | 'key.revoked'
      | 'webhook.test'
    >
  >();
  assertType<
    Equal<
      EventData<'file.written'>,
      | { path: string; sizeBytes: number; source: 'write' | 'upload' }
      | ({ path: string; sizeBytes: number | null; source: 'exec' } & ChangeAttribution)
    >
  >();
  switch (e.type) {
    case 'file.written':
      is<'write' | 'upload' | 'exec'>(e.data.source);
      // The files API's writes always know their size; a command's may not.
      if (e.data.source !== 'exec') is<number>(e.data.sizeBytes);
      else is<string | undefined>(e.data.execId ?? e.data.processId);
      break;
    case 'files.changed':
      is<number>(e.data.total);
      is<boolean>(e.data.truncated);
      break;
    case 'snapshot.restored':
      is<number>(e.data.filesRestored);
      break;
    case 'key.created':
      is<string>(e.data.keyId);
      break;
    case 'process.exited':
      is<ExitReason>(e.data.exitReason);
      is<string | null>(e.data.signal);
      break;
  }
  is<string>(e.createdAt);
  is<string | null>(e.namespace);
  is<'2026-04-30'>(e.apiVersion);
}

export async function admin(): Promise<void> {
  const admin = new TroveAdminClient({ apiKey: 'k', workspaceId: 'ws-1' });
  is<CreatedApiKey>(await admin.createKey('n', { namespace: 'ns' }));
  is<CreatedApiKey>(await admin.keys.create('n', { admin: true }));
  is<string>((await admin.createKey('n')).apiKey);
  is<ApiKey[]>(await admin.listKeys());
  // @ts-expect-error listed keys never carry the secret
  is<string>((await admin.listKeys())[0]!.apiKey);
  is<{ keyId: string; revoked: true }>(await admin.revokeKey('key-1'));
  const hook: CreatedWebhook = await admin.createWebhook({
    url: 'https://x',
    events: ['*'],
    namespace: null,
    description: null,
  });
  is<string>(hook.signingSecret);
  // @ts-expect-error url is required
  await admin.createWebhook({ events: ['*'] });
  is<Webhook[]>(await admin.listWebhooks());
  is<Webhook>(await admin.updateWebhook('wh-1', { enabled: true }));
  is<Webhook>(await admin.retrieveWebhook('wh-1'));
  is<string | null | undefined>((await admin.webhooks.retrieve('wh-1')).disabledReason);
  const detail: WebhookDeliveryDetail = await admin.retrieveWebhookDelivery('wh-1', 'dlv-1');
  is<number | null>(detail.attemptHistory[0]!.statusCode);
  await admin.listWebhookDeliveries('wh-1', { status: 'failed' });
  // @ts-expect-error not a delivery status
  await admin.listWebhookDeliveries('wh-1', { status: 'lost' });
  is<{ webhookId: string; deleted: true }>(await admin.deleteWebhook('wh-1'));
  is<WebhookTestResult>(await admin.testWebhook('wh-1'));
  const deliveries: WebhookDelivery[] = await admin.listWebhookDeliveries('wh-1', { limit: 10 });
  assertType<Equal<WebhookDelivery['status'], 'pending' | 'delivered' | 'failed'>>();
  is<WebhookDelivery>(await admin.resendWebhookDelivery('wh-1', deliveries[0]!.deliveryId));
  is<Namespace[]>(await admin.listNamespaces());
  is<{ namespace: string; deleted: true }>(await admin.deleteNamespace('ns'));
  is<string>(await admin.getWorkspaceId());
  for await (const e of admin.events.list()) is<TroveEvent>(e);
  const ws = await createWorkspace('name', { baseUrl: 'http://x' });
  is<string>(ws.apiKey);
  is<string | undefined>(ws.adminApiKey);
  // @ts-expect-error admin clients have no runtime calls
  await admin.exec('ls');
}

export async function webhooksAndErrors(raw: Uint8Array, header: string): Promise<void> {
  is<WebhookEvent>(verifyWebhook({ secret: 's', body: raw, signatureHeader: header }));
  is<WebhookEvent>(
    await verifyWebhookAsync({ secret: 's', body: 'text', headers: new Headers(), toleranceSeconds: 10 }),
  );
  // @ts-expect-error parsed JSON is not a raw body
  verifyWebhook({ secret: 's', body: { id: 'x' }, signatureHeader: header });
  is<string>(generateTestHeader({ secret: 's', payload: 'x', timestamp: 1 }));

  try {
    await new TroveClient().exec('false');
  } catch (err) {
    if (err instanceof TroveExecError) is<number>(err.exitCode);
    if (err instanceof RateLimitError) is<number | null>(err.retryAfter);
    if (err instanceof APIError) {
      is<number>(err.status);
      is<string | undefined>(err.code);
      is<string | undefined>(err.requestId);
      is<string | undefined>(err.detail);
    }
    if (err instanceof WebhookSignatureError) is<string>(err.reason);
  }
}
