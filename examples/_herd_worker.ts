/**
 * A worker of `thundering_herd.ts`: its own epoll instance, one listening
 * socket in it, and a blocking `epoll_wait` on its own thread. It counts how
 * often it was woken and how often a wake-up found nothing to accept.
 *
 * @module
 */
import { EPOLL, SOCK } from "../ffi/constants.ts";
import { EPOLL_EVENT, writeEpollEvent } from "../ffi/epoll_event.ts";
import { check } from "../ffi/errno.ts";
import { ipAddress } from "../ffi/sockaddr.ts";
import { Socket } from "../ffi/socket.ts";
import * as sys from "../ffi/syscalls.ts";

/** How the workers wait for connections. */
export type HerdMode = "plain" | "exclusive" | "reuseport";

/** What the main thread sends to start a worker. */
export interface HerdWorkerConfig {
  /** 0-based worker number (its row in the counters). */
  id: number;
  /** The mode. */
  mode: HerdMode;
  /** The shared listening socket (plain and exclusive modes). */
  listenFd: number;
  /** Where to bind this worker's own listener (reuseport mode). */
  host: string;
  /** The port (reuseport mode). */
  port: number;
  /** Counters: see {@linkcode HerdCounters}. */
  shared: SharedArrayBuffer;
}

/** What a worker posts back. */
export type HerdWorkerMessage = { type: "ready"; id: number } | { type: "done"; id: number };

/** Layout of the shared counters: a stop flag, then one row per worker. */
export const HerdCounters = {
  /** Cell of the stop flag. */
  STOP: 0,
  /** Cells per worker row. */
  ROW: 4,
  /** Offsets within a row. */
  WAKEUPS: 0,
  ACCEPTED: 1,
  EMPTY: 2,
  /** Index of a counter of worker `id`. */
  at(id: number, field: number): number {
    return HerdCounters.ROW * (id + 1) + field;
  },
  /** Bytes for `workers` rows. */
  bytes(workers: number): number {
    return HerdCounters.ROW * (workers + 1) * 4;
  },
} as const;

function run(cfg: HerdWorkerConfig): void {
  const cells = new Int32Array(cfg.shared);
  let own: Socket | undefined;
  let listenFd = cfg.listenFd;
  if (cfg.mode === "reuseport") {
    own = Socket.create(ipAddress(cfg.host, 0).family, "stream");
    own.setOption("reusePort", true); // every listener on the port sets it
    own.bind(ipAddress(cfg.host, cfg.port));
    own.listen();
    listenFd = own.fd;
  }
  const epfd = check("epoll_create1", sys.epoll_create1(EPOLL.CLOEXEC));
  const ev = new Uint8Array(EPOLL_EVENT.size);
  const bits = EPOLL.IN | (cfg.mode === "exclusive" ? EPOLL.EXCLUSIVE : 0);
  writeEpollEvent(new DataView(ev.buffer), 0, { events: bits, token: listenFd, generation: 0 });
  check("epoll_ctl", sys.epoll_ctl(epfd, EPOLL.CTL_ADD, listenFd, ev));
  const events = new Uint8Array(8 * EPOLL_EVENT.size);

  scope.postMessage({ type: "ready", id: cfg.id } satisfies HerdWorkerMessage);
  while (Atomics.load(cells, HerdCounters.STOP) === 0) {
    // Blocking, on this worker's own thread; the timeout lets it see the stop flag.
    const n = sys.epoll_wait(epfd, events, 8, 50);
    if (n <= 0) continue;
    Atomics.add(cells, HerdCounters.at(cfg.id, HerdCounters.WAKEUPS), 1);
    let got = 0;
    for (;;) {
      const fd = sys.accept4(listenFd, null, null, SOCK.NONBLOCK | SOCK.CLOEXEC);
      if (fd < 0) break; // EAGAIN: another worker was faster
      sys.close(fd);
      got++;
    }
    if (got === 0) Atomics.add(cells, HerdCounters.at(cfg.id, HerdCounters.EMPTY), 1);
    else Atomics.add(cells, HerdCounters.at(cfg.id, HerdCounters.ACCEPTED), got);
  }
  sys.close(epfd);
  own?.close();
  scope.postMessage({ type: "done", id: cfg.id } satisfies HerdWorkerMessage);
}

/** The parts of a worker's global scope used here (the file is type-checked with the main lib). */
interface WorkerScope {
  postMessage(message: unknown): void;
  onmessage: ((e: MessageEvent<HerdWorkerConfig>) => void) | null;
}
const scope = globalThis as unknown as WorkerScope;

// Only as a worker's entry module; the main thread imports this file for its types.
if (import.meta.main) scope.onmessage = (e) => run(e.data);
