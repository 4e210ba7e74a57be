/**
 * The thundering herd, measured: several Workers wait for connections on one
 * port, three ways, and the main thread connects N times, one connection at
 * a time. Each worker blocks in `epoll_wait` on its own epoll instance and
 * counts its wake-ups; a wake-up whose `accept` finds nothing (another
 * worker was faster) is wasted.
 *
 * - `plain`: one listening socket, registered `EPOLLIN` (level-triggered) in
 *   every worker's epoll instance. A connection wakes every waiting instance.
 * - `exclusive`: the same, registered `EPOLLIN | EPOLLEXCLUSIVE` (Linux 4.5):
 *   the kernel wakes one waiter (or a few). It avoids the herd but does not
 *   balance: the first idle waiter in the socket's wait queue gets the wake-up,
 *   so one worker may take every connection.
 * - `reuseport`: one listener per worker, all bound to the port with
 *   `SO_REUSEPORT` (Linux 3.9); the kernel hashes each connection to one of
 *   them, so only its owner wakes.
 *
 * Expect about one wake-up per connection for `exclusive` and `reuseport`,
 * more for `plain` (how many more depends on how many workers are asleep in
 * `epoll_wait` when the connection comes; on a machine with fewer cores than
 * workers, a woken worker that runs after the accept went back to sleep
 * inside the kernel and is not counted).
 *
 * Run it with exactly the permissions it needs (`--allow-read` loads the
 * Workers' module, `--allow-net` makes the connections):
 *
 *     deno run --allow-ffi --allow-read --allow-net examples/thundering_herd.ts --workers 4
 *
 * @module
 */
import { Socket } from "../ffi/socket.ts";
import { ipAddress } from "../ffi/sockaddr.ts";
import { integerFlag, parseArgs } from "./_args.ts";
import {
  HerdCounters,
  type HerdMode,
  type HerdWorkerConfig,
  type HerdWorkerMessage,
} from "./_herd_worker.ts";

const args = parseArgs(Deno.args, {
  usage: "thundering_herd.ts [--host H] [--port P] [--workers 4] [--connections 40] " +
    "[--gap-ms 5] [--modes plain,exclusive,reuseport]",
  defaults: { host: "127.0.0.1", port: 0 },
  strings: { workers: "4", connections: "40", "gap-ms": "5", modes: "plain,exclusive,reuseport" },
});
const count = (name: string, min: number): number =>
  integerFlag(args, name, min, `an integer >= ${min}`);
const workerCount = count("workers", 1);
const connections = count("connections", 1);
const gapMs = count("gap-ms", 0);
const modes = args.strings.modes!.split(",") as HerdMode[];
for (const m of modes) {
  if (m !== "plain" && m !== "exclusive" && m !== "reuseport") {
    console.error(`--modes: unknown mode "${m}" (plain, exclusive, reuseport)`);
    Deno.exit(2);
  }
}

/** The counts of one mode. */
interface HerdResult {
  mode: HerdMode;
  wakeups: number;
  accepted: number;
  empty: number;
  perWorker: number[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function measure(mode: HerdMode): Promise<HerdResult> {
  // plain/exclusive: one listener shared by number (fds are process-wide).
  // reuseport: a placeholder reserves the port (bound, never listening, so it
  // takes no connections); each worker listens on the port itself.
  const first = Socket.create(ipAddress(args.host, 0).family, "stream");
  const workers: Worker[] = [];
  try {
    if (mode === "reuseport") first.setOption("reusePort", true);
    else first.setOption("reuseAddress", true);
    first.bind(ipAddress(args.host, args.port));
    if (mode !== "reuseport") first.listen();
    const port = (first.localAddress() as { port: number }).port;

    const shared = new SharedArrayBuffer(HerdCounters.bytes(workerCount));
    const cells = new Int32Array(shared);
    const ready: Promise<void>[] = [];
    const done: Promise<void>[] = [];
    for (let id = 0; id < workerCount; id++) {
      const w = new Worker(new URL("./_herd_worker.ts", import.meta.url), { type: "module" });
      workers.push(w);
      let onReady!: () => void, onDone!: () => void, onFail!: (e: Error) => void;
      ready.push(
        new Promise<void>((resolve, reject) => {
          onReady = resolve;
          onFail = reject;
        }),
      );
      done.push(new Promise<void>((resolve) => onDone = resolve));
      w.onmessage = (e: MessageEvent<HerdWorkerMessage>) =>
        e.data.type === "ready" ? onReady() : onDone();
      w.onerror = (e) => {
        e.preventDefault();
        onFail(new Error(`worker ${id} (${mode}) failed: ${e.message}`));
        onDone();
      };
      const config: HerdWorkerConfig = {
        id,
        mode,
        listenFd: first.fd,
        host: args.host,
        port,
        shared,
      };
      w.postMessage(config);
    }
    await Promise.all(ready);
    await sleep(50); // let every worker settle into epoll_wait

    const total = () => {
      let n = 0;
      for (let id = 0; id < workerCount; id++) {
        n += cells[HerdCounters.at(id, HerdCounters.ACCEPTED)]!;
      }
      return n;
    };
    for (let i = 0; i < connections; i++) {
      const conn = await Deno.connect({ hostname: args.host, port });
      const deadline = performance.now() + 2000;
      while (total() < i + 1 && performance.now() < deadline) await sleep(1);
      conn.close();
      if (gapMs > 0) await sleep(gapMs); // everyone back in epoll_wait before the next one
    }

    Atomics.store(cells, HerdCounters.STOP, 1);
    await Promise.all(done);
    const field = (id: number, f: number) => cells[HerdCounters.at(id, f)]!;
    const perWorker = Array.from(
      { length: workerCount },
      (_, id) => field(id, HerdCounters.WAKEUPS),
    );
    let empty = 0;
    for (let id = 0; id < workerCount; id++) empty += field(id, HerdCounters.EMPTY);
    return {
      mode,
      wakeups: perWorker.reduce((a, b) => a + b, 0),
      accepted: total(),
      empty,
      perWorker,
    };
  } finally {
    for (const w of workers) w.terminate();
    first.close();
  }
}

console.log(
  `${workerCount} workers, ${connections} connections, one at a time, ${args.host}` +
    (args.port === 0 ? "" : `:${args.port}`),
);
console.log("mode        wake-ups  per connection  wasted  accepted  wake-ups per worker");
for (const mode of modes) {
  const r = await measure(mode);
  console.log(
    `${r.mode.padEnd(10)}  ${String(r.wakeups).padStart(8)}  ${
      (r.wakeups / r.accepted).toFixed(2).padStart(14)
    }  ` +
      `${String(r.empty).padStart(6)}  ${String(r.accepted).padStart(8)}  ${r.perWorker.join(" ")}`,
  );
  if (r.accepted !== connections) {
    console.error(`${mode}: accepted ${r.accepted} of ${connections} connections`);
    Deno.exit(1);
  }
}
