/**
 * The machinery of `serve({ workers })` (private): the main thread's side
 * (reserve the port, start the Workers, forward shutdown) and a Worker's
 * side (serve on the reserved port, report back). See `workers.ts`.
 *
 * @module
 */
import { envVar } from "../reactor/_env.ts";
import { ipAddress } from "../ffi/sockaddr.ts";
import { Socket } from "../ffi/socket.ts";
import { notify } from "../reactor/sd_notify.ts";
import { type ConnFactory, drainOnSignals, ServerCore, stopDrainingOnSignals } from "./_core.ts";
import type { ResolvedOptions } from "./_options.ts";
import type { HttpServer, NetAddr, UnixAddr } from "./types.ts";
import { WORKER_NAME_PREFIX } from "./workers.ts";

// deno-lint-ignore no-explicit-any
const scope = globalThis as any;
let workerServer: HttpServer | undefined;

/** The `serve()` of a serve Worker. */
export function serveInWorker(options: ResolvedOptions, factory: ConnFactory): HttpServer {
  if (workerServer !== undefined) return workerServer;
  const name = scope.name as string;
  const port = Number(name.slice(name.lastIndexOf(":") + 1));
  const core = new ServerCore(
    {
      ...options,
      port,
      portGiven: true,
      reusePort: true,
      workers: 1,
      inherit: false,
      listenFdName: undefined,
      drainOnSignals: false,
      signal: undefined,
      onListen: (addr) => {
        options.onListen(addr);
        scope.postMessage({ type: "listening" });
      },
    },
    factory,
    false,
  );
  workerServer = core;
  scope.addEventListener("message", (e: MessageEvent) => {
    if (e.data?.type === "shutdown") {
      core.shutdown().then(() => {
        scope.postMessage({ type: "finished" });
        scope.close();
      });
    }
  });
  return core;
}

/** The main thread's view of a multi-threaded server. */
class MultiServer implements HttpServer {
  readonly addr: NetAddr | UnixAddr;
  readonly finished: Promise<void>;
  readonly #workers: Worker[];
  readonly #stopped: Promise<void>[];
  #shutdown: Promise<void> | undefined;

  constructor(addr: NetAddr, workers: Worker[], stopped: Promise<void>[], reservation: Socket) {
    this.addr = addr;
    this.#workers = workers;
    this.#stopped = stopped;
    this.finished = Promise.all(stopped).then(() => {
      for (const w of this.#workers) w.terminate();
      reservation.close();
    });
  }

  shutdown(): Promise<void> {
    if (this.#shutdown === undefined) {
      for (const w of this.#workers) w.postMessage({ type: "shutdown" });
      this.#shutdown = this.finished;
    }
    return this.#shutdown;
  }

  ref(): void {}

  unref(): void {}

  [Symbol.asyncDispose](): Promise<void> {
    return this.shutdown();
  }
}

/**
 * Serve on `options.workers` Workers. The main thread keeps a
 * bound, never listening `SO_REUSEPORT` socket: it reserves the port (the
 * real one when 0 was asked) and receives no connections.
 */
export function startWorkers(options: ResolvedOptions, _factory: ConnFactory): HttpServer {
  if (options.path !== undefined) {
    throw new RangeError("Cannot serve: workers needs a TCP port, not a Unix path");
  }
  checkWorkersCanLoad(Deno.mainModule);
  const ip = ipAddress(options.hostname, options.port);
  const reservation = Socket.create(ip.family, "stream");
  let port: number;
  try {
    reservation.setOption("reuseAddress", true);
    reservation.setOption("reusePort", true);
    if (ip.family === "inet6") reservation.setOption("v6Only", options.listener.v6Only ?? false);
    reservation.bind(ip);
    const local = reservation.localAddress();
    port = local.family === "unix" ? 0 : local.port;
  } catch (e) {
    reservation.close();
    throw e;
  }
  const workers: Worker[] = [];
  const listening: Promise<void>[] = [];
  const stopped: Promise<void>[] = [];
  for (let i = 0; i < options.workers; i++) {
    const worker = new Worker(Deno.mainModule, {
      type: "module",
      name: `${WORKER_NAME_PREFIX}${i}:${port}`,
    });
    let onListening!: () => void;
    let onStopped!: () => void;
    listening.push(new Promise((r) => onListening = r));
    stopped.push(new Promise((r) => onStopped = r));
    worker.onmessage = (e: MessageEvent) => {
      if (e.data?.type === "listening") onListening();
      else if (e.data?.type === "finished") onStopped();
    };
    worker.onerror = (e: ErrorEvent) => {
      console.error(`ffinet http: serve worker ${i} failed: ${e.message}`);
      e.preventDefault();
      onListening();
      onStopped();
    };
    workers.push(worker);
  }
  const addr: NetAddr = { transport: "tcp", hostname: options.hostname, port };
  const server = new MultiServer(addr, workers, stopped, reservation);
  Promise.all(listening).then(() => {
    if (envVar("NOTIFY_SOCKET") === undefined) return;
    try {
      notify("READY=1");
    } catch (e) {
      console.error(`ffinet http: ${(e as Error).message}`);
    }
  });
  const signal = options.signal;
  if (signal !== undefined) {
    if (signal.aborted) void server.shutdown();
    else signal.addEventListener("abort", () => void server.shutdown(), { once: true });
  }
  if (options.drainOnSignals) {
    drainOnSignals(server);
    void server.finished.then(() => stopDrainingOnSignals(server));
  }
  return server;
}

/**
 * Each Worker re-runs the main module: without permission to load it the
 * Workers would fail one by one while the main thread carried on serving
 * nothing. Refuse at once instead.
 */
function checkWorkersCanLoad(mainModule: string): void {
  const url = new URL(mainModule);
  const descriptor: Deno.PermissionDescriptor = url.protocol === "file:"
    ? { name: "read", path: url }
    : { name: "import", host: url.host };
  if (Deno.permissions.querySync(descriptor).state !== "granted") {
    throw new Error(
      `Cannot serve with workers: each Worker re-runs the main module ${mainModule}, which needs ` +
        (url.protocol === "file:" ? `--allow-read for it` : `--allow-import for ${url.host}`),
    );
  }
}
