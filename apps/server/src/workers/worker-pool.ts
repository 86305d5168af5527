import { Worker } from 'node:worker_threads';
import { Logger } from '@nestjs/common';
import { TreeNotLoadedError, type WorkRequest, type WorkResult } from './tree-work.js';
import { fromWire, transferable, type WireError } from './wire-error.js';

/** The worker's program: the built one, from src/ (tests) and dist/ (npm start) alike. */
const WORKER_FILE = new URL('../../dist/workers/tree.worker.js', import.meta.url);

/** Decoded tree entries a worker keeps (TreeCache): a folder of 300,000 entries, and more besides. */
const CACHED_ENTRIES = 500_000;

/**
 * Builds a job's request once a worker is free, so queued jobs hold no bytes yet. Without `load`,
 * trees may be sent by id alone: the worker may have them cached, and says when it has not.
 */
export type MakeRequest<R extends WorkRequest> = (load: boolean) => Promise<R>;

interface Job {
  make: MakeRequest<WorkRequest>;
  resolve: (result: unknown) => void;
  reject: (error: unknown) => void;
}

/** One worker thread and its queue; it is given one job at a time. */
class Lane {
  /** Started for the first job, and again after one exits. */
  private worker: Worker | undefined;
  private readonly queue: Job[] = [];
  private current: Job | undefined;
  /** Whether the current job's request was made with its bytes. */
  private loaded = false;
  private nextId = 0;
  private closed = false;

  constructor(private readonly logger: Logger) {}

  get load(): number {
    return this.queue.length + (this.current ? 1 : 0);
  }

  submit(job: Job): void {
    if (this.closed) {
      job.reject(new Error('the server is shutting down'));
      return;
    }
    this.queue.push(job);
    this.pump();
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.queue.splice(0)) job.reject(new Error('the server is shutting down'));
    await this.worker?.terminate();
  }

  private spawn(): Worker {
    const worker = new Worker(WORKER_FILE, { workerData: { cachedEntries: CACHED_ENTRIES } });
    worker.unref();
    worker.on('message', (message: { id: number; result?: unknown; error?: WireError }) => {
      const job = this.current;
      if (!job || message.id !== this.nextId) return;
      if (message.error?.name === TreeNotLoadedError.name && !this.loaded) {
        this.send(job, true); // not cached after all: again, with the bytes, keeping the worker
        return;
      }
      this.current = undefined;
      if (message.error) job.reject(fromWire(message.error));
      else job.resolve(message.result);
      this.pump();
    });
    worker.on('error', (error) => {
      this.logger.error(`a worker thread failed: ${error.stack ?? error.message}`);
    });
    worker.on('exit', (code) => {
      if (this.closed) return;
      this.logger.error(`a worker thread exited with ${code}; the next job starts another`);
      this.current?.reject(new Error(`the worker thread exited with ${code}`));
      this.current = undefined;
      this.worker = undefined;
      this.pump();
    });
    return worker;
  }

  private pump(): void {
    if (this.current || this.closed) return;
    const job = this.queue.shift();
    if (!job) return;
    this.current = job;
    this.send(job, false);
  }

  private send(job: Job, load: boolean): void {
    this.loaded = load;
    const id = ++this.nextId;
    job.make(load).then(
      (request) => {
        if (this.current !== job || this.nextId !== id) return;
        const transfer = bytesOf(request).map((bytes) => bytes.buffer);
        this.worker ??= this.spawn();
        this.worker.postMessage({ id, request }, transfer);
      },
      (error: unknown) => {
        if (this.current !== job) return;
        this.current = undefined;
        job.reject(error);
        this.pump();
      },
    );
  }
}

/** The stored bytes a request carries, made movable (see transferable) in place. */
function bytesOf(request: WorkRequest): Uint8Array<ArrayBuffer>[] {
  const moved: Uint8Array<ArrayBuffer>[] = [];
  const move = (holder: { stored?: Uint8Array | undefined } | null): void => {
    if (!holder?.stored) return;
    const bytes = transferable(holder.stored);
    holder.stored = bytes;
    moved.push(bytes);
  };
  switch (request.op) {
    case 'verifyObject':
    case 'verifyPack':
      move(request);
      break;
    case 'list':
    case 'child':
      move(request.tree);
      break;
    case 'diff':
      move(request.before);
      move(request.after);
      break;
    case 'replace':
      move(request.tree);
      break;
  }
  return moved;
}

/**
 * Worker threads for tree-work.ts, so that decoding a big tree or checking a big upload never holds
 * up the event loop (a 300,000-entry folder took 3 s of it per listing). Each worker does one job at
 * a time; the rest wait in its queue without their bytes, which are read only when it is their
 * turn, so memory stays bounded however many requests wait. Work on one tree goes to one worker, so
 * its cache serves the next page.
 */
export class WorkerPool {
  private readonly lanes: Lane[];

  constructor(size: number) {
    const logger = new Logger('WorkerPool');
    this.lanes = Array.from({ length: Math.max(1, size) }, () => new Lane(logger));
  }

  /**
   * Runs the request `make` builds once a worker is free; `affinity` (a tree's id) picks the worker
   * that may have that tree cached, otherwise the least busy one takes it.
   */
  run<R extends WorkRequest>(make: MakeRequest<R>, affinity?: string): Promise<WorkResult<R>> {
    const lane =
      affinity === undefined
        ? this.lanes.reduce((best, lane) => (lane.load < best.load ? lane : best))
        : (this.lanes[(Number.parseInt(affinity.slice(0, 8), 16) || 0) % this.lanes.length] as Lane);
    return new Promise((resolve, reject) => {
      lane.submit({ make, resolve: resolve as (result: unknown) => void, reject });
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.lanes.map((lane) => lane.close()));
  }
}
