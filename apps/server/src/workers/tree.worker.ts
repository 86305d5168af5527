import { parentPort, workerData } from 'node:worker_threads';
import { TreeCache } from './tree-cache.js';
import { work, type WorkRequest } from './tree-work.js';
import { transferable, toWire } from './wire-error.js';

/** A worker thread of the pool (worker-pool.ts): one request at a time, answered by id. */
const port = parentPort;
if (!port) throw new Error('tree.worker.js runs as a worker thread of the server');
const cache = new TreeCache((workerData as { cachedEntries: number }).cachedEntries);

port.on('message', (message: { id: number; request: WorkRequest }) => {
  work(message.request, cache).then(
    (result) => {
      if (result && 'stored' in result) {
        const stored = transferable(result.stored);
        port.postMessage({ id: message.id, result: { ...result, stored } }, [stored.buffer]);
      } else {
        port.postMessage({ id: message.id, result });
      }
    },
    (error: unknown) => {
      port.postMessage({ id: message.id, error: toWire(error) });
    },
  );
});
