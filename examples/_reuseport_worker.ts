/**
 * A worker of `reuseport_workers.ts`: its own {@linkcode Reactor}, its own
 * listening socket bound with `SO_REUSEPORT` to the shared port, and an echo
 * of every byte, written on `Socket` and `Reactor` directly. The listener is
 * level-triggered; connections are edge-triggered and read until EAGAIN.
 *
 * @module
 */
import { ipAddress } from "../ffi/sockaddr.ts";
import { Socket } from "../ffi/socket.ts";
import { Interest, Reactor, type Readiness, type Registration } from "../reactor/mod.ts";

/** Messages to a worker. */
export type ReuseportWorkerCommand =
  | { type: "start"; id: number; host: string; port: number }
  | { type: "stop" };

/** Messages from a worker. */
export type ReuseportWorkerReport =
  | { type: "listening"; id: number; port: number }
  | { type: "stopped"; id: number; served: number; bytes: number }
  | { type: "error"; id: number; message: string };

const CONN = Interest.READABLE | Interest.READ_CLOSED | Interest.EDGE;

/** One client: its socket and the echo the kernel has not taken yet. */
interface Client {
  socket: Socket;
  pending: Uint8Array | null;
}

class EchoWorker {
  readonly reactor = new Reactor();
  readonly listener: Socket;
  readonly clients = new Set<Registration<Client>>();
  readonly buf = new Uint8Array(64 * 1024);
  served = 0;
  bytes = 0;
  done: Promise<void> | undefined;

  constructor(host: string, port: number) {
    const addr = ipAddress(host, port);
    this.listener = Socket.create(addr.family, "stream");
    try {
      this.listener.setOption("reusePort", true); // every socket on the port must set it
      this.listener.bind(addr);
      this.listener.listen();
      this.reactor.register(this.listener.fd, Interest.READABLE, () => this.#accept());
    } catch (e) {
      this.listener.close();
      this.reactor.close();
      throw e;
    }
  }

  get port(): number {
    return (this.listener.localAddress() as { port: number }).port;
  }

  #accept(): void {
    for (let s; (s = this.listener.accept()) !== null;) {
      this.served++;
      const reg = this.reactor.register<Client>(s.fd, CONN, (ready, r) => this.#onReady(ready, r), {
        socket: s,
        pending: null,
      });
      this.clients.add(reg);
    }
  }

  #close(reg: Registration<Client>): void {
    reg.deregister(); // first deregister, then close
    reg.data.socket.close();
    this.clients.delete(reg);
  }

  /** Write `data`, keeping what does not fit; false when the peer is gone. */
  #send(reg: Registration<Client>, data: Uint8Array): boolean {
    let off = 0;
    try {
      while (off < data.byteLength) {
        const n = reg.data.socket.write(data.subarray(off));
        if (n === null) {
          reg.data.pending = data.slice(off);
          reg.modify(CONN | Interest.WRITABLE);
          return true;
        }
        off += n;
      }
    } catch {
      return false; // EPIPE, ECONNRESET
    }
    this.bytes += data.byteLength;
    return true;
  }

  #onReady(ready: Readiness, reg: Registration<Client>): void {
    const c = reg.data;
    if (ready.writable && c.pending !== null) {
      const data = c.pending;
      c.pending = null;
      if (!this.#send(reg, data)) return this.#close(reg);
      if (c.pending !== null) return; // still full
      reg.modify(CONN);
    }
    // Edge-triggered: read until EAGAIN, unless replies are queued (then the
    // writable report comes back here to finish).
    while (c.pending === null) {
      let n: number | null;
      try {
        n = c.socket.read(this.buf);
      } catch {
        return this.#close(reg); // ECONNRESET
      }
      if (n === null) return;
      if (n === 0) return this.#close(reg);
      if (!this.#send(reg, this.buf.subarray(0, n))) return this.#close(reg);
    }
  }

  async stop(): Promise<void> {
    this.reactor.stop();
    await this.done;
    for (const reg of [...this.clients]) this.#close(reg);
    this.reactor.registrationOf(this.listener.fd)?.deregister();
    this.listener.close();
    this.reactor.close();
  }
}

/** The parts of a worker's global scope used here (the file is type-checked with the main lib). */
interface WorkerScope {
  postMessage(message: ReuseportWorkerReport): void;
  onmessage: ((e: MessageEvent<ReuseportWorkerCommand>) => void) | null;
}
const scope = globalThis as unknown as WorkerScope;

let worker: EchoWorker | undefined;
let id = 0;

async function handle(cmd: ReuseportWorkerCommand): Promise<void> {
  try {
    if (cmd.type === "start") {
      id = cmd.id;
      worker = new EchoWorker(cmd.host, cmd.port);
      worker.done = worker.reactor.run().catch((e) => {
        scope.postMessage({
          type: "error",
          id,
          message: e instanceof Error ? e.message : String(e),
        });
      });
      scope.postMessage({ type: "listening", id, port: worker.port });
    } else if (worker !== undefined) {
      await worker.stop();
      scope.postMessage({ type: "stopped", id, served: worker.served, bytes: worker.bytes });
      worker = undefined;
    }
  } catch (e) {
    scope.postMessage({ type: "error", id, message: e instanceof Error ? e.message : String(e) });
  }
}

// Only as a worker's entry module; the main thread imports this file for its types.
if (import.meta.main) scope.onmessage = (e) => void handle(e.data);
