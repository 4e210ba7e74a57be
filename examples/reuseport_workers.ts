/**
 * One port, N threads, no shared socket: each Deno Worker runs its own
 * {@linkcode Reactor} and its own listening socket bound to the same port
 * with `SO_REUSEPORT`, and serves an echo. The kernel hashes each incoming
 * connection to one of the listeners, so the workers share the load without
 * a thundering herd (the seeds' recommended fix, as in nginx `reuseport`).
 *
 * Run it with exactly the permissions it needs (`--allow-read` loads the
 * Workers' module):
 *
 *     deno run --allow-ffi --allow-read examples/reuseport_workers.ts --port 9000 --workers 4
 *
 * Stop it with Ctrl-C (SIGINT) or SIGTERM; it prints how many connections
 * each worker served.
 *
 * @module
 */
import { parseArgs } from "./_args.ts";
import type { ReuseportWorkerCommand, ReuseportWorkerReport } from "./_reuseport_worker.ts";
import { stopSignal } from "./_signals.ts";

/** Options for {@linkcode startReuseportWorkers}. */
export interface ReuseportWorkersOptions {
  /** Address to listen on. Default `"127.0.0.1"`. */
  host?: string;
  /** Port; 0 lets the kernel choose one for the first worker, the others join it. Default 0. */
  port?: number;
  /** How many workers. Default 2. */
  workers?: number;
}

/** What one worker did. */
export interface ReuseportWorkerStats {
  /** The worker's number (0-based). */
  id: number;
  /** Connections it accepted. */
  served: number;
  /** Bytes it echoed. */
  bytes: number;
}

/** Running workers, from {@linkcode startReuseportWorkers}. */
export interface ReuseportWorkers {
  /** The port they all listen on. */
  readonly port: number;
  /** Stop every worker's reactor, close their sockets, end the Workers; resolves to their counts. */
  stop(): Promise<ReuseportWorkerStats[]>;
}

/** A Worker with a request/response view of its messages. */
class WorkerHandle {
  readonly worker: Worker;
  #waiting: ((r: ReuseportWorkerReport) => void) | undefined;
  #failure: Error | undefined;

  constructor(readonly id: number) {
    this.worker = new Worker(new URL("./_reuseport_worker.ts", import.meta.url), {
      type: "module",
    });
    this.worker.onmessage = (e: MessageEvent<ReuseportWorkerReport>) => {
      if (e.data.type === "error") this.#fail(new Error(`worker ${id}: ${e.data.message}`));
      else this.#take(e.data);
    };
    this.worker.onerror = (e) => {
      e.preventDefault();
      this.#fail(new Error(`worker ${id} failed: ${e.message}`));
    };
  }

  #take(r: ReuseportWorkerReport): void {
    const w = this.#waiting;
    this.#waiting = undefined;
    w?.(r);
  }

  #fail(e: Error): void {
    this.#failure ??= e;
    this.#take({ type: "error", id: this.id, message: e.message });
  }

  /** Send a command and wait for the worker's next report. */
  request(cmd: ReuseportWorkerCommand): Promise<ReuseportWorkerReport> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    return new Promise((resolve, reject) => {
      this.#waiting = (r) =>
        r.type === "error" ? reject(this.#failure ?? new Error(r.message)) : resolve(r);
      this.worker.postMessage(cmd);
    });
  }
}

/**
 * Start `workers` Workers that each listen on the same port with
 * `SO_REUSEPORT` and echo what they receive.
 *
 * @example
 * ```ts ignore
 * const pool = await startReuseportWorkers({ port: 0, workers: 2 });
 * const conn = await Deno.connect({ hostname: "127.0.0.1", port: pool.port });
 * // ...
 * const stats = await pool.stop();
 * ```
 */
export async function startReuseportWorkers(
  options: ReuseportWorkersOptions = {},
): Promise<ReuseportWorkers> {
  const host = options.host ?? "127.0.0.1";
  const count = options.workers ?? 2;
  if (!Number.isInteger(count) || count < 1) {
    throw new RangeError(`Cannot start workers: ${count} is not a positive integer`);
  }
  const handles: WorkerHandle[] = [];
  const stop = async (): Promise<ReuseportWorkerStats[]> => {
    const out: ReuseportWorkerStats[] = [];
    try {
      for (const h of handles) {
        const r = await h.request({ type: "stop" });
        if (r.type === "stopped") out.push({ id: h.id, served: r.served, bytes: r.bytes });
      }
    } finally {
      for (const h of handles) h.worker.terminate();
    }
    return out;
  };
  try {
    let port = options.port ?? 0;
    for (let id = 0; id < count; id++) {
      const h = new WorkerHandle(id);
      handles.push(h);
      // One at a time: the first one's port (maybe kernel-chosen) is everyone's.
      const r = await h.request({ type: "start", id, host, port });
      if (r.type === "listening") port = r.port;
    }
    return { port, stop };
  } catch (e) {
    await stop().catch(() => {});
    throw e;
  }
}

if (import.meta.main) {
  const args = parseArgs(Deno.args, {
    usage: "reuseport_workers.ts [--host H] [--port P] [--workers 4]",
    defaults: { host: "127.0.0.1", port: 9000 },
    strings: { workers: "4" },
  });
  const workers = Number(args.strings.workers);
  if (!Number.isInteger(workers) || workers < 1) {
    console.error(`--workers ${args.strings.workers} is not a positive integer`);
    Deno.exit(2);
  }
  const pool = await startReuseportWorkers({ host: args.host, port: args.port, workers });
  console.log(`listening on ${args.host}:${pool.port}`);
  await stopSignal();
  for (const s of await pool.stop()) {
    console.log(`worker ${s.id}: ${s.served} connections, ${s.bytes} bytes echoed`);
  }
}
