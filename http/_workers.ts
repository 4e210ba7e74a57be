/**
 * The machinery of serving on several workers (private). For
 * `serve({ workers })`: the main thread's side (reserve the port, start the
 * Workers, forward shutdown, share ticket keys, relay WebSocket publishes)
 * and a Worker's side (serve on the reserved port, report back); see
 * `workers.ts`. For a worker process of ffinet's supervisor: `serve()`
 * takes the supervisor's ticket keys and follows its rotations, through
 * `supervisor_channel.ts`.
 *
 * @module
 */
import { envVar } from "../reactor/env.ts";
import { ipAddress } from "../ffi/sockaddr.ts";
import { Socket } from "../ffi/socket.ts";
import { closeFd, listOpenFds } from "../ffi/fd.ts";
import { notify } from "../reactor/sd_notify.ts";
import { type ConnFactory, drainOnSignals, ServerCore, stopDrainingOnSignals } from "./_core.ts";
import type { ResolvedOptions } from "./_options.ts";
import type { HttpServer, NetAddr, UnixAddr } from "./types.ts";
import { WEBSOCKET_PUBLISH, WORKER_NAME_PREFIX } from "./workers.ts";
import { DEFAULT_TICKET_KEY_ROTATION_MS } from "../tls/options.ts";
import { type SupervisorChannel, supervisorChannel, TICKET_KEYS } from "./supervisor_channel.ts";

// deno-lint-ignore no-explicit-any
const scope = globalThis as any;
let workerServer: HttpServer | undefined;

/** The `serve()` of a serve Worker. */
export function serveInWorker(options: ResolvedOptions, factory: ConnFactory): HttpServer {
  if (workerServer !== undefined) return workerServer;
  const name = scope.name as string;
  const port = Number(name.slice(name.lastIndexOf(":") + 1));
  const before = socketFds();
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
      // HTTPS: this key serves until the main thread's shared one arrives
      // ("ticketKeys" below); the main thread rotates them.
      tls: options.tls === undefined || options.tls.ticketKeys !== undefined
        ? options.tls
        : { ...options.tls, ticketKeys: crypto.getRandomValues(new Uint8Array(80)) },
      onListen: (addr) => {
        options.onListen(addr);
      },
    },
    factory,
    false,
  );
  workerServer = core;
  // The listener is the socket that appeared while the server was made
  // (Workers start one at a time, so no other thread binds meanwhile): the
  // main thread closes it should this Worker die without closing it.
  const listener = [...socketFds()].find(([fd, target]) =>
    before.get(fd) !== target && isListenerOn(fd, port)
  );
  scope.postMessage({
    type: "listening",
    fd: listener?.[0] ?? -1,
    target: listener?.[1] ?? "",
  });
  scope.addEventListener("message", (e: MessageEvent) => {
    if (e.data?.type === TICKET_KEYS && e.data.material instanceof Uint8Array) {
      core.rotateTicketKeys(e.data.material);
    } else if (e.data?.type === "shutdown") {
      core.shutdown().then(() => {
        scope.postMessage({ type: "finished" });
        scope.close();
      });
    }
  });
  return core;
}

/** This process's socket fds and their `/proc/self/fd` targets (`socket:[inode]`). */
function socketFds(): Map<number, string> {
  const out = new Map<number, string>();
  try {
    for (const [fd, target] of listOpenFds()) if (target.startsWith("socket:")) out.set(fd, target);
  } catch { /* no /proc: the listener cannot be found, nor closed for a dead Worker */ }
  return out;
}

/** Whether `fd` is a listening TCP socket bound to `port`. */
function isListenerOn(fd: number, port: number): boolean {
  const s = new Socket(fd);
  try {
    if (!s.getOption("acceptConnections")) return false;
    const local = s.localAddress();
    return local.family !== "unix" && local.port === port;
  } catch {
    return false;
  } finally {
    s.release();
  }
}

/** Close a dead Worker's listener, when `fd` still is that socket. */
function closeListener(fd: number, target: string): boolean {
  if (fd < 0 || target === "") return false;
  if (socketFds().get(fd) !== target) return false; // closed (and maybe reused) already
  closeFd(fd);
  return true;
}

/** Restart delays of a Worker that died: 100 ms, doubling, at most 5 s. */
const RESTART_MIN_MS = 100;
const RESTART_MAX_MS = 5000;
/** A Worker that served this long resets its restart delay. */
const RESTART_STABLE_MS = 30_000;

/** One of the N Workers of a multi-threaded server, restarted when it dies. */
class WorkerSlot {
  worker: Worker | null = null;
  readonly stopped: Promise<void>;
  #resolveStopped!: () => void;
  #listener: { fd: number; target: string } | null = null;
  #startedAt = 0;
  #delay = RESTART_MIN_MS;
  #restartTimer: ReturnType<typeof setTimeout> | undefined;
  #shuttingDown = false;
  #done = false;
  /** Times this slot's Worker died and was restarted. */
  restarts = 0;
  /** HTTPS: the session ticket key all Workers share (sent once it listens). */
  #ticketKeys: Uint8Array | undefined;
  /** The server's Workers: a WebSocket `publish` of one is relayed to the others. */
  peers: readonly WorkerSlot[] = [];
  /** Under ffinet's supervisor: publishes go to the other worker processes too. */
  channel: SupervisorChannel | null = null;

  constructor(
    readonly index: number,
    readonly name: string,
    readonly onFirstListening: () => void,
  ) {
    this.stopped = new Promise((r) => this.#resolveStopped = r);
  }

  /** Start (or restart) the Worker; resolves once it listens or failed. */
  start(): Promise<void> {
    let listening!: () => void;
    const ready = new Promise<void>((r) => listening = r);
    const worker = new Worker(Deno.mainModule, { type: "module", name: this.name });
    this.worker = worker;
    this.#startedAt = Date.now();
    let up = false;
    worker.onmessage = (e: MessageEvent) => {
      if (e.data?.type === "listening") {
        this.#listener = { fd: Number(e.data.fd), target: String(e.data.target) };
        up = true;
        this.onFirstListening();
        if (this.#ticketKeys !== undefined) {
          worker.postMessage({ type: TICKET_KEYS, material: this.#ticketKeys });
        }
        listening();
        if (this.#shuttingDown) worker.postMessage({ type: "shutdown" });
      } else if (e.data?.type === "finished") this.#finish();
      else if (e.data?.type === WEBSOCKET_PUBLISH) {
        for (const peer of this.peers) if (peer !== this) peer.worker?.postMessage(e.data);
        this.channel?.publish(e.data.topic, e.data.data);
      }
    };
    worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      worker.terminate();
      this.worker = null;
      // Its listener would keep receiving about 1/N of the new connections,
      // never to accept them: close it at once.
      const l = this.#listener;
      this.#listener = null;
      const closed = l !== null && closeListener(l.fd, l.target);
      listening();
      if (this.#shuttingDown || !up) {
        console.error(`ffinet http: serve worker ${this.index} failed: ${e.message}`);
        this.#finish();
        return;
      }
      if (Date.now() - this.#startedAt >= RESTART_STABLE_MS) this.#delay = RESTART_MIN_MS;
      const delay = this.#delay;
      this.#delay = Math.min(this.#delay * 2, RESTART_MAX_MS);
      this.restarts++;
      console.error(
        `ffinet http: serve worker ${this.index} died: ${e.message}; ` +
          `${closed ? "its listener was closed; " : ""}restarting it in ${delay} ms`,
      );
      this.#restartTimer = setTimeout(() => {
        this.#restartTimer = undefined;
        if (this.#shuttingDown) return this.#finish();
        void this.start();
      }, delay);
    };
    return ready;
  }

  /** Share session ticket key `material` with this slot's Worker (now, or once it listens). */
  shareTicketKeys(material: Uint8Array): void {
    this.#ticketKeys = material;
    if (this.#listener !== null) this.worker?.postMessage({ type: TICKET_KEYS, material });
  }

  shutdown(): void {
    this.#shuttingDown = true;
    if (this.#restartTimer !== undefined) {
      clearTimeout(this.#restartTimer);
      this.#restartTimer = undefined;
      this.#finish();
      return;
    }
    if (this.#listener !== null) this.worker?.postMessage({ type: "shutdown" });
    else if (this.worker === null) this.#finish();
    // else: still loading; it is told once it listens
  }

  #finish(): void {
    if (this.#done) return;
    this.#done = true;
    this.worker?.terminate();
    this.#resolveStopped();
  }
}

/** The main thread's view of a multi-threaded server. */
class MultiServer implements HttpServer {
  /** Each Worker serves on its own reactor: none on this thread. */
  readonly reactor = null;
  readonly addr: NetAddr | UnixAddr;
  readonly finished: Promise<void>;
  readonly #slots: WorkerSlot[];
  #shutdown: Promise<void> | undefined;

  constructor(addr: NetAddr, slots: WorkerSlot[], reservation: Socket) {
    this.addr = addr;
    this.#slots = slots;
    this.finished = Promise.all(slots.map((s) => s.stopped)).then(() => {
      reservation.close();
    });
  }

  shutdown(): Promise<void> {
    if (this.#shutdown === undefined) {
      for (const s of this.#slots) s.shutdown();
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
 * real one when 0 was asked) and receives no connections. Workers start one
 * after the other (each reports its listener's fd); one that dies of an
 * uncaught error has its listener closed at once and is restarted.
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
  const slots: WorkerSlot[] = [];
  for (let i = 0; i < options.workers; i++) {
    slots.push(new WorkerSlot(i, `${WORKER_NAME_PREFIX}${i}:${port}`, () => {}));
  }
  for (const slot of slots) slot.peers = slots;
  const addr: NetAddr = { transport: "tcp", hostname: options.hostname, port };
  const server = new MultiServer(addr, slots, reservation);
  const channel = supervisorChannel();
  if (channel !== null) joinSupervisor(channel, options, slots, server);
  else shareTicketKeys(options, slots, server);
  void (async () => {
    for (const slot of slots) await slot.start();
    if (envVar("NOTIFY_SOCKET") === undefined) return;
    try {
      notify("READY=1");
    } catch (e) {
      console.error(`ffinet http: ${(e as Error).message}`);
    }
  })();
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
 * HTTPS without caller-given `ticketKeys`: one session ticket key for every
 * Worker, so a client resumes on whichever Worker accepts it. The material
 * is random, made here, handed to the Workers by message (never written
 * anywhere), and replaced every `ticketKeyRotationMs` (default an hour; the
 * previous two keys still resume).
 */
function shareTicketKeys(options: ResolvedOptions, slots: WorkerSlot[], server: HttpServer): void {
  const tls = options.tls;
  if (tls === undefined || tls.ticketKeys !== undefined) return;
  const share = () => {
    const material = crypto.getRandomValues(new Uint8Array(80));
    for (const s of slots) s.shareTicketKeys(material);
  };
  share();
  const every = tls.ticketKeyRotationMs ?? DEFAULT_TICKET_KEY_ROTATION_MS;
  if (every <= 0) return;
  const id = setInterval(share, every);
  Deno.unrefTimer(id);
  void server.finished.then(() => clearInterval(id));
}

/**
 * `serve({ workers })` in a worker process of ffinet's supervisor: the
 * Workers get the supervisor's ticket keys (and its rotations) instead of
 * this thread's, and WebSocket publishes cross the channel both ways.
 */
function joinSupervisor(
  channel: SupervisorChannel,
  options: ResolvedOptions,
  slots: WorkerSlot[],
  server: HttpServer,
): void {
  for (const s of slots) s.channel = channel;
  const offPublish = channel.onPublish((topic, data) => {
    const message = { type: WEBSOCKET_PUBLISH, topic, data };
    for (const s of slots) s.worker?.postMessage(message);
  });
  let offKeys = () => {};
  const keys = channel.ticketKeys();
  if (options.tls !== undefined && options.tls.ticketKeys === undefined && keys.length > 0) {
    for (const k of keys) for (const s of slots) s.shareTicketKeys(k);
    offKeys = channel.onTicketKey((k) => {
      for (const s of slots) s.shareTicketKeys(k);
    });
  } else shareTicketKeys(options, slots, server);
  void server.finished.then(() => {
    offPublish();
    offKeys();
  });
}

/**
 * `serve()` in a worker process of ffinet's supervisor (`make` builds the
 * server): HTTPS without caller-given `ticketKeys` starts with the
 * supervisor's keys (oldest first, so the newest encrypts and the previous
 * ones still decrypt) and takes each rotation it sends, so every worker
 * process resumes every other's sessions. Then the channel is read on this
 * thread's reactor (for rotations and WebSocket publishes). Elsewhere it
 * is `make(options)`.
 */
export function serveSupervised<S extends HttpServer & { rotateTicketKeys(m: Uint8Array): void }>(
  options: ResolvedOptions,
  make: (options: ResolvedOptions) => S,
): S {
  const channel = supervisorChannel();
  if (channel === null) return make(options);
  const tls = options.tls;
  const keys = channel.ticketKeys();
  if (tls === undefined || tls.ticketKeys !== undefined || keys.length === 0) {
    const server = make(options);
    channel.attach();
    return server;
  }
  const server = make({ ...options, tls: { ...tls, ticketKeys: keys[0]! } });
  for (const k of keys.slice(1)) server.rotateTicketKeys(k);
  for (const k of keys) k.fill(0);
  const off = channel.onTicketKey((k) => server.rotateTicketKeys(k));
  void server.finished.then(off);
  channel.attach();
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
