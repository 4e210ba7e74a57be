/**
 * A worker of `oneshot_workers.ts`: waits with a plain blocking
 * `epoll_wait(…, 1, …)` on the epoll set it shares with the other workers
 * (fds and epoll instances are process-wide, so a number passed in a message
 * is the same fd here), handles one readiness, then re-arms the fd.
 *
 * @module
 */
import { EPOLL, MSG, SOCK } from "../ffi/constants.ts";
import { EPOLL_EVENT, readEpollEvent, writeEpollEvent } from "../ffi/epoll_event.ts";
import { EAGAIN } from "../ffi/errno.ts";
import * as sys from "../ffi/syscalls.ts";

/** What the main thread sends to start a worker. */
export interface OneshotWorkerConfig {
  /** 1-based worker number (0 marks "no owner" in the shared table). */
  id: number;
  /** The shared epoll fd. */
  epfd: number;
  /** The listening socket (registered ONESHOT in the shared set). */
  listenFd: number;
  /** Shared state: see {@linkcode OneshotShared}. */
  shared: SharedArrayBuffer;
  /** How long "handling" a readiness takes after the echo (ms). */
  workMs: number;
  /** Register connections with EPOLLONESHOT (the point of the example). */
  oneshot: boolean;
  /** Print one line per readiness. */
  verbose: boolean;
}

/** What a worker posts back. */
export type OneshotWorkerMessage =
  | { type: "ready"; id: number }
  | { type: "done"; id: number; handled: number; accepted: number; overlaps: number };

/** Layout of the shared buffer: control cells, then one owner and one "open" cell per fd. */
export const OneshotShared = {
  /** Cells: [0] stop flag, [1] total overlaps, [2] sleep cell. */
  CONTROL: 4,
  /** Highest fd number tracked. */
  MAX_FD: 65536,
  /** Bytes for the whole table. */
  get bytes(): number {
    return (this.CONTROL + 2 * this.MAX_FD) * 4;
  },
} as const;

/** The connection interest: level-triggered reads (and EOF), once per arm. */
export function connectionInterest(oneshot: boolean): number {
  return EPOLL.IN | EPOLL.RDHUP | (oneshot ? EPOLL.ONESHOT : 0);
}

function run(cfg: OneshotWorkerConfig): void {
  const cells = new Int32Array(cfg.shared);
  const owners = cells.subarray(
    OneshotShared.CONTROL,
    OneshotShared.CONTROL + OneshotShared.MAX_FD,
  );
  const open = cells.subarray(OneshotShared.CONTROL + OneshotShared.MAX_FD);
  const events = new Uint8Array(EPOLL_EVENT.size);
  const eventsView = new DataView(events.buffer);
  const ev = new Uint8Array(EPOLL_EVENT.size);
  const evView = new DataView(ev.buffer);
  const buf = new Uint8Array(16 * 1024);
  const interest = connectionInterest(cfg.oneshot);
  const say = (msg: string) => {
    if (cfg.verbose) console.log(`worker ${cfg.id}: ${msg}`);
  };
  const ctl = (op: number, fd: number, bits: number) => {
    writeEpollEvent(evView, 0, { events: bits, token: fd, generation: 0 });
    return sys.epoll_ctl(cfg.epfd, op, fd, ev);
  };
  const sleep = (ms: number) => Atomics.wait(cells, 2, 0, ms);
  let handled = 0, accepted = 0, overlaps = 0;

  const sendAll = (fd: number, data: Uint8Array): boolean => {
    let off = 0;
    while (off < data.byteLength) {
      const n = sys.send(fd, data.subarray(off), data.byteLength - off, MSG.NOSIGNAL);
      if (n >= 0) off += n;
      else if (n === -EAGAIN) sleep(1); // a slow reader: this worker holds the fd anyway
      else return false;
    }
    return true;
  };

  const onListener = () => {
    for (;;) {
      const fd = sys.accept4(cfg.listenFd, null, null, SOCK.NONBLOCK | SOCK.CLOEXEC);
      if (fd < 0) break; // EAGAIN: all accepted (or an error worth ignoring here)
      if (fd >= OneshotShared.MAX_FD || ctl(EPOLL.CTL_ADD, fd, interest) < 0) {
        sys.close(fd);
        continue;
      }
      Atomics.store(open, fd, 1);
      accepted++;
      say(`accepted fd ${fd}`);
    }
    ctl(EPOLL.CTL_MOD, cfg.listenFd, EPOLL.IN | EPOLL.ONESHOT); // re-arm the listener
  };

  const onConnection = (fd: number, bits: number) => {
    handled++;
    const other = Atomics.compareExchange(owners, fd, 0, cfg.id);
    if (other !== 0) {
      overlaps++;
      if (Atomics.add(cells, 1, 1) < 5) {
        console.log(
          `worker ${cfg.id}: fd ${fd} is being handled by worker ${other} at the same time!`,
        );
      }
    }
    let echoed = 0;
    let eof = (bits & (EPOLL.HUP | EPOLL.ERR)) !== 0;
    for (;;) {
      const n = sys.read(fd, buf);
      if (n > 0) {
        if (!sendAll(fd, buf.subarray(0, n))) {
          eof = true;
          break;
        }
        echoed += n;
        continue;
      }
      if (n !== -EAGAIN) eof = true; // 0 = end of stream, or an error
      break;
    }
    if (!eof && cfg.workMs > 0) sleep(cfg.workMs); // "work" while holding the connection
    if (other === 0) Atomics.store(owners, fd, 0); // release before re-arming
    if (eof) {
      if (other !== 0) return void sleep(1); // the owner closes it (LT reports EOF until then)
      say(`fd ${fd} closed by the peer (${echoed} bytes echoed)`);
      ctl(EPOLL.CTL_DEL, fd, 0);
      Atomics.store(open, fd, 0);
      sys.close(fd);
      return;
    }
    if (cfg.oneshot) ctl(EPOLL.CTL_MOD, fd, interest); // re-arm: the next readiness may go to anyone
    say(`fd ${fd} readable, ${echoed} bytes echoed${cfg.oneshot ? ", re-armed" : ""}`);
  };

  scope.postMessage({ type: "ready", id: cfg.id } satisfies OneshotWorkerMessage);
  while (Atomics.load(cells, 0) === 0) {
    // Blocking is fine here: this is the worker's own thread. The timeout lets
    // it notice the stop flag.
    const n = sys.epoll_wait(cfg.epfd, events, 1, 50);
    if (n <= 0) continue;
    const { events: bits, token: fd } = readEpollEvent(eventsView, 0);
    if (fd === cfg.listenFd) onListener();
    else onConnection(fd, bits);
  }
  scope.postMessage(
    { type: "done", id: cfg.id, handled, accepted, overlaps } satisfies OneshotWorkerMessage,
  );
}

/** The parts of a worker's global scope used here (the file is type-checked with the main lib). */
interface WorkerScope {
  postMessage(message: unknown): void;
  onmessage: ((e: MessageEvent<OneshotWorkerConfig>) => void) | null;
}
const scope = globalThis as unknown as WorkerScope;

// Only as a worker's entry module; the main thread imports this file for its types.
if (import.meta.main) scope.onmessage = (e) => run(e.data);
