/**
 * EPOLLONESHOT with re-arm, as the seeds describe it: several threads wait on
 * ONE epoll instance; every connection is registered `EPOLLIN | EPOLLONESHOT`,
 * so a readiness wakes one thread and the fd then stays silent until that
 * thread re-arms it (`EPOLL_CTL_MOD`) when it has finished. A connection is
 * never handled by two threads at once, even when more data arrives while
 * one is still working on it.
 *
 * Here the threads are Deno Workers. An epoll fd is process-wide, so the
 * main thread creates the listener and the epoll set and passes their
 * numbers to the workers, which wait on it with a plain blocking
 * `epoll_wait` on their own threads. A shared table records which worker
 * owns each fd, so an overlap would be caught and printed.
 *
 * Run it with exactly the permissions it needs (`--allow-read` loads the
 * Workers' module, `--allow-net` runs the local clients):
 *
 *     deno run --allow-ffi --allow-read --allow-net examples/oneshot_workers.ts --clients 8
 *
 * `--clients N` runs N local clients (each sends `--messages` lines faster
 * than a worker handles them, `--work-ms` each), checks every echo and exits;
 * with `--clients 0` it serves `--port` until Ctrl-C;
 * `--without-oneshot` registers connections without EPOLLONESHOT, to see the
 * overlaps it prevents.
 *
 * @module
 */
import { EPOLL } from "../ffi/constants.ts";
import { EPOLL_EVENT, writeEpollEvent } from "../ffi/epoll_event.ts";
import { check } from "../ffi/errno.ts";
import { ipAddress } from "../ffi/sockaddr.ts";
import { Socket } from "../ffi/socket.ts";
import * as sys from "../ffi/syscalls.ts";
import { integerFlag, parseArgs } from "./_args.ts";
import {
  OneshotShared,
  type OneshotWorkerConfig,
  type OneshotWorkerMessage,
} from "./_oneshot_worker.ts";
import { stopSignal } from "./_signals.ts";

const args = parseArgs(Deno.args, {
  usage: "oneshot_workers.ts [--host H] [--port P] [--workers 3] [--clients 0] [--messages 5] " +
    "[--work-ms 3] [--without-oneshot] [--quiet]",
  defaults: { host: "127.0.0.1", port: 9000 },
  booleans: ["without-oneshot", "quiet"],
  strings: { workers: "3", clients: "0", messages: "5", "work-ms": "3" },
});
const count = (name: string, min: number): number =>
  integerFlag(args, name, min, `an integer >= ${min}`);
const workerCount = count("workers", 1);
const clientCount = count("clients", 0);
const messages = count("messages", 1);
const workMs = count("work-ms", 0);
const oneshot = !args.booleans.has("without-oneshot");

// The listener and the one epoll set every worker waits on.
const listener = Socket.create(ipAddress(args.host, 0).family, "stream");
listener.setOption("reuseAddress", true);
listener.bind(ipAddress(args.host, args.port));
listener.listen();
const epfd = check("epoll_create1", sys.epoll_create1(EPOLL.CLOEXEC));
const ev = new Uint8Array(EPOLL_EVENT.size);
writeEpollEvent(new DataView(ev.buffer), 0, {
  events: EPOLL.IN | EPOLL.ONESHOT,
  token: listener.fd,
  generation: 0,
});
check("epoll_ctl", sys.epoll_ctl(epfd, EPOLL.CTL_ADD, listener.fd, ev));

const shared = new SharedArrayBuffer(OneshotShared.bytes);
const cells = new Int32Array(shared);
const workers: Worker[] = [];
const finished = new Map<number, Extract<OneshotWorkerMessage, { type: "done" }>>();
let allDone: () => void = () => {};
const doneP = new Promise<void>((r) => allDone = r);
const readyP: Promise<void>[] = [];
for (let id = 1; id <= workerCount; id++) {
  const w = new Worker(new URL("./_oneshot_worker.ts", import.meta.url), { type: "module" });
  readyP.push(
    new Promise((resolve, reject) => {
      w.onerror = (e) => {
        e.preventDefault();
        reject(new Error(`worker ${id} failed: ${e.message}`));
      };
      w.onmessage = (e: MessageEvent<OneshotWorkerMessage>) => {
        if (e.data.type === "ready") resolve();
        else {
          finished.set(e.data.id, e.data);
          if (finished.size === workerCount) allDone();
        }
      };
    }),
  );
  const config: OneshotWorkerConfig = {
    id,
    epfd,
    listenFd: listener.fd,
    shared,
    workMs,
    oneshot,
    verbose: !args.booleans.has("quiet"),
  };
  w.postMessage(config);
  workers.push(w);
}
await Promise.all(readyP);
const port = (listener.localAddress() as { port: number }).port;
console.log(`listening on ${args.host}:${port}`);

let clientsOk = true;
if (clientCount > 0) {
  clientsOk = await runClients(port);
} else {
  await stopSignal();
}

// Stop: raise the flag, wait for every worker's report, then close what is left.
Atomics.store(cells, 0, 1);
await doneP;
for (const w of workers) w.terminate();
const open = cells.subarray(OneshotShared.CONTROL + OneshotShared.MAX_FD);
for (let fd = 0; fd < open.length; fd++) if (open[fd] === 1) sys.close(fd);
sys.close(epfd);
listener.close();

let reports = 0;
let overlaps = 0;
console.log("summary:");
for (const [id, r] of [...finished].sort((a, b) => a[0] - b[0])) {
  console.log(
    `  worker ${id}: ${r.handled} readiness reports handled, ${r.accepted} connections accepted`,
  );
  reports += r.handled;
  overlaps += r.overlaps;
}
console.log(
  overlaps === 0
    ? `no connection was handled by two workers at once (0 overlaps in ${reports} reports)`
    : `${overlaps} times a connection was handled by two workers at once (in ${reports} reports)`,
);
if (clientCount > 0) {
  console.log(`clients: ${clientsOk ? "every echo was correct" : "some echoes were WRONG"}`);
}
if (!clientsOk || (oneshot && overlaps > 0)) Deno.exit(1);

/** N clients; each sends its lines faster than a worker handles them and checks the echo. */
async function runClients(port: number): Promise<boolean> {
  const one = async (c: number): Promise<boolean> => {
    const conn = await Deno.connect({ hostname: args.host, port });
    try {
      const expected = Array.from({ length: messages }, (_, m) => `client ${c} message ${m}\n`)
        .join("");
      const want = new TextEncoder().encode(expected);
      const reading = (async () => {
        const got = new Uint8Array(want.byteLength);
        let n = 0;
        while (n < got.byteLength) {
          const r = await conn.read(got.subarray(n));
          if (r === null) break;
          n += r;
        }
        return new TextDecoder().decode(got.subarray(0, n));
      })();
      for (let m = 0; m < messages; m++) {
        await conn.write(new TextEncoder().encode(`client ${c} message ${m}\n`));
        await new Promise((r) => setTimeout(r, 1)); // arrives while a worker is still "working"
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<string>((r) =>
        timer = setTimeout(() => r("(timed out)"), 10_000)
      );
      const got = await Promise.race([reading, timeout]);
      clearTimeout(timer);
      if (got !== expected) console.log(`client ${c}: wrong echo: ${JSON.stringify(got)}`);
      return got === expected;
    } finally {
      conn.close();
    }
  };
  const results = await Promise.all(Array.from({ length: clientCount }, (_, c) => one(c)));
  await new Promise((r) => setTimeout(r, 50)); // let the workers see the closes
  return results.every((ok) => ok);
}
