import type { IncomingMessage, ServerResponse } from 'node:http';
import { type MtlsHandler, type Peer, readBody, sendError, sendJson } from '../net/server.ts';
import type { Role } from '../net/tls-identity.ts';
import { isDigest } from '../store/digest.ts';
import type { Store } from '../store/store.ts';
import { checkCompiler, mapArgs, Refusal } from './policy.ts';
import {
  BadMessage,
  JobResultSchema,
  type JobSpec,
  JobSpecSchema,
  MissingBlobsSchema,
  parseMessage,
  TreeRefreshSchema,
  WorkerReportSchema,
} from './protocol.ts';
import type { JobQueue } from './queue.ts';
import type { FarmStatus } from './status.ts';
import { farmStatusHtml } from './status-page.ts';
import type { IncludeTree } from './tree.ts';

/** How long a worker's request for work waits before it is answered "nothing" and asks again. */
export const POLL_MS = 20_000;

/** Which routes each certificate role may use; anything else is refused with 403. */
const ALLOWED: Record<string, Role[]> = {
  'POST /jobs': ['client'],
  'POST /tree/refresh': ['client'],
  'POST /work': ['worker'],
  'POST /jobs/heartbeat': ['worker'],
  'POST /jobs/result': ['worker'],
  'PUT /blobs': ['worker'],
  'GET /blobs': ['worker', 'client'],
  'POST /blobs/missing': ['worker', 'client'],
  'GET /status': ['worker', 'client', 'syncer'],
  'GET /': ['worker', 'client', 'syncer'],
};

/** What the syncer's routes work on. */
interface SyncerRoutes {
  store: Store;
  tree: IncludeTree;
  queue: JobQueue;
  compilers: string[];
  status: () => FarmStatus;
}

/** The syncer's HTTP API: a malformed request is answered 400, anything else unexpected surfaces. */
export function syncerHandler(ctx: SyncerRoutes): MtlsHandler {
  return (req, res, peer) =>
    route(ctx, req, res, peer).catch((err: unknown) => {
      if (!(err instanceof BadRequest) && !(err instanceof BadMessage)) throw err;
      sendError(res, 400, 'ACCEL_FARM_BAD_REQUEST', err.message);
    });
}

async function route(ctx: SyncerRoutes, req: IncomingMessage, res: ServerResponse, peer: Peer): Promise<void> {
  const { store, tree, queue } = ctx;
  const path = new URL(req.url ?? '/', 'https://x').pathname;
  const parts = path.split('/').filter(Boolean);
  // /jobs/<id>/result → "POST /jobs/result"; /blobs/<digest> → "GET /blobs"
  const shape =
    parts[0] === 'jobs' && parts.length === 3
      ? `/jobs/${parts[2]}`
      : parts[0] === 'blobs' && parts.length === 2 && parts[1] !== 'missing'
        ? '/blobs'
        : path;
  const key = `${req.method} ${shape}`;
  const roles = ALLOWED[key];
  if (!roles) return sendError(res, 404, 'ACCEL_FARM_NOT_FOUND', `no route ${key}`);
  if (!peer.role || !roles.includes(peer.role)) {
    return sendError(
      res,
      403,
      'ACCEL_FARM_ROLE_REFUSED',
      `a ${peer.role ?? 'certificate without a role'} may not ${key} (allowed: ${roles.join(', ')})`,
      'issue a certificate with the right --role',
    );
  }
  switch (key) {
    case 'POST /jobs':
      return submit(ctx, req, res);
    case 'POST /tree/refresh': {
      const { paths } = parseMessage(TreeRefreshSchema, await readJson(req, {}), 'tree refresh');
      return sendJson(res, 200, { manifest: await tree.refresh(paths) });
    }
    case 'POST /work': {
      const report = parseMessage(WorkerReportSchema, await readJson(req), 'worker report');
      if (!ownsId(peer, report.id)) return refuseId(res, peer);
      report.name = peer.name;
      let closed = false;
      res.on('close', () => {
        closed = true;
        queue.forget(report);
      });
      const job = await queue.take(report, POLL_MS);
      if (closed) {
        // The worker went away while its poll was answered: the lease expires and the job is requeued.
        return;
      }
      if (!job) {
        res.writeHead(204).end();
        return;
      }
      return sendJson(res, 200, job);
    }
    case 'POST /jobs/heartbeat': {
      const worker = new URL(req.url ?? '/', 'https://x').searchParams.get('worker') ?? '';
      if (!ownsId(peer, worker)) return refuseId(res, peer);
      const ok = queue.heartbeat(parts[1] as string, worker);
      return sendJson(res, ok ? 200 : 410, { ok });
    }
    case 'POST /jobs/result': {
      const worker = new URL(req.url ?? '/', 'https://x').searchParams.get('worker') ?? '';
      if (!ownsId(peer, worker)) return refuseId(res, peer);
      const result = parseMessage(JobResultSchema, await readJson(req), 'job result');
      const ok = queue.complete(parts[1] as string, worker, result);
      return sendJson(res, ok ? 200 : 410, { ok });
    }
    case 'POST /blobs/missing': {
      const { digests } = parseMessage(MissingBlobsSchema, await readJson(req), 'missing blobs');
      return sendJson(res, 200, { missing: digests.filter((d) => !isDigest(d) || !store.has(d)) });
    }
    case 'GET /blobs': {
      const digest = parts[1] as string;
      const data = isDigest(digest) ? store.read(digest) : undefined;
      if (!data) return sendError(res, 404, 'ACCEL_FARM_NO_BLOB', `no blob ${digest}`);
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': data.length });
      res.end(data);
      return;
    }
    case 'PUT /blobs': {
      const digest = parts[1] as string;
      if (!isDigest(digest)) return sendError(res, 400, 'ACCEL_FARM_BAD_DIGEST', `not a digest: ${digest}`);
      await store.putBuffer(await readBody(req), { expected: digest });
      return sendJson(res, 200, { ok: true });
    }
    case 'GET /status':
      return sendJson(res, 200, ctx.status());
    case 'GET /': {
      const html = farmStatusHtml(ctx.status());
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(html);
      return;
    }
  }
}

async function submit(ctx: SyncerRoutes, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const { queue } = ctx;
  let spec: JobSpec;
  try {
    spec = parseMessage(JobSpecSchema, await readJson(req), 'job');
  } catch (err) {
    if (!(err instanceof BadMessage)) throw err;
    queue.refusedAtSubmit();
    return sendError(res, 400, 'ACCEL_FARM_BAD_JOB', err.message);
  }
  if (spec.run !== undefined || spec.declared !== undefined) {
    // Only the syncer's own REAPI side, under reapiRun: any, makes a job that runs a command unchecked.
    queue.refusedAtSubmit();
    return sendError(res, 400, 'ACCEL_FARM_BAD_JOB', 'job: run and declared are set only by the syncer itself');
  }
  try {
    checkCompiler(spec.compiler, ctx.compilers);
    mapArgs({ args: spec.args, cwd: spec.cwd, roots: ctx.tree.roots, root: '/sandbox', compiler: spec.compiler });
  } catch (err) {
    if (!(err instanceof Refusal)) throw err;
    queue.refusedAtSubmit();
    return sendError(res, 400, err.code, err.message);
  }
  const job = queue.submit(spec);
  res.on('close', () => {
    if (!res.writableFinished) job.cancel();
  });
  sendJson(res, 200, await job.result);
}

class BadRequest extends Error {}

/**
 * A worker id is its certificate's name, a dash and 8 hex digits (worker.ts): matched whole, so the
 * certificate `w1` cannot act for `w1-evil-0123abcd`, which belongs to the certificate `w1-evil`.
 */
function ownsId(peer: Peer, id: unknown): boolean {
  return (
    typeof id === 'string' && id.startsWith(`${peer.name}-`) && /^[0-9a-f]{8}$/.test(id.slice(peer.name.length + 1))
  );
}

function refuseId(res: ServerResponse, peer: Peer): void {
  sendError(
    res,
    403,
    'ACCEL_FARM_ID_REFUSED',
    `the certificate '${peer.name}' acts only for worker ids '${peer.name}-' and 8 hex digits`,
  );
}

async function readJson(req: IncomingMessage, empty?: unknown): Promise<unknown> {
  const text = (await readBody(req, 64 * 1024 * 1024)).toString();
  if (text === '' && empty !== undefined) return empty;
  try {
    return JSON.parse(text);
  } catch {
    throw new BadRequest('the request body is not JSON');
  }
}
