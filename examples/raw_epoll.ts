/**
 * The seeds' epoll echo loop written directly on `ffi/`, with no Reactor:
 * `socket` → `bind` → `listen` → `epoll_create1` → `epoll_ctl` → a loop of
 * `epoll_wait`. The listening socket is level-triggered (one `accept` per
 * report; the kernel reports again while more connections wait), clients are
 * edge-triggered (each report is read until EAGAIN, or the rest would wait
 * for the next arrival). Every byte a client sends comes back.
 *
 * The wait is the non-blocking FFI `epoll_wait` (it runs on a pool thread),
 * so Deno's event loop stays free for the SIGINT/SIGTERM listeners, which
 * end the wait through an eventfd registered in the same epoll set.
 *
 * Run it with exactly the permissions it needs:
 *
 *     deno run --allow-ffi examples/raw_epoll.ts --host 127.0.0.1 --port 9000
 *
 * @module
 */
import { AF, EPOLL, MSG, SO, SOCK, SOL } from "../ffi/constants.ts";
import { EPOLL_EVENT, readEpollEvent, writeEpollEvent } from "../ffi/epoll_event.ts";
import { check, EAGAIN } from "../ffi/errno.ts";
import {
  decodeSockaddr,
  encodeSockaddr,
  ipAddress,
  SOCKADDR_STORAGE_SIZE,
} from "../ffi/sockaddr.ts";
import * as sys from "../ffi/syscalls.ts";
import { parseArgs } from "./_args.ts";

const args = parseArgs(Deno.args, {
  usage: "raw_epoll.ts [--host H] [--port P] [--verbose]",
  defaults: { host: "127.0.0.1", port: 9000 },
  booleans: ["verbose"],
});
const verbose = args.booleans.has("verbose");
const log = (msg: string) => {
  if (verbose) console.log(msg);
};

const MAX_EVENTS = 64;
const CLIENT_EVENTS = EPOLL.IN | EPOLL.RDHUP | EPOLL.ET;

/** A client: what it still has to get back (when the kernel's send buffer was full). */
interface Client {
  pending: Uint8Array | null;
}

// socket + SO_REUSEADDR + bind + listen, non-blocking from the start.
const addr = ipAddress(args.host, args.port);
const listenFd = check(
  "socket",
  sys.socket(
    addr.family === "inet" ? AF.INET : AF.INET6,
    SOCK.STREAM | SOCK.NONBLOCK | SOCK.CLOEXEC,
    0,
  ),
);
check(
  "setsockopt",
  sys.setsockopt(listenFd, SOL.SOCKET, SO.REUSEADDR, new Uint8Array(new Int32Array([1]).buffer)),
);
check("bind", sys.bind(listenFd, encodeSockaddr(addr)), `${args.host}:${args.port}`);
check("listen", sys.listen(listenFd, 511));

// The epoll set: the listener (LT), the stop eventfd, and the clients (ET).
const epfd = check("epoll_create1", sys.epoll_create1(EPOLL.CLOEXEC));
const stopFd = check(
  "eventfd",
  sys.eventfd(0, 0o4000 /* EFD_NONBLOCK */ | 0o2000000 /* EFD_CLOEXEC */),
);
const ev = new Uint8Array(EPOLL_EVENT.size);
const evView = new DataView(ev.buffer);
function ctl(op: number, fd: number, events: number): number {
  // data carries the fd itself, as in the seed (`ev.data.fd = fd`).
  writeEpollEvent(evView, 0, { events, token: fd, generation: 0 });
  return sys.epoll_ctl(epfd, op, fd, ev);
}
check("epoll_ctl", ctl(EPOLL.CTL_ADD, listenFd, EPOLL.IN)); // level-triggered
check("epoll_ctl", ctl(EPOLL.CTL_ADD, stopFd, EPOLL.IN));

const clients = new Map<number, Client>();
const buf = new Uint8Array(64 * 1024);
const peer = new Uint8Array(SOCKADDR_STORAGE_SIZE);
const peerLen = new Uint32Array(1);
let served = 0;

function acceptOne(): void {
  peerLen[0] = peer.byteLength;
  const fd = sys.accept4(listenFd, peer, peerLen, SOCK.NONBLOCK | SOCK.CLOEXEC);
  if (fd === -EAGAIN) return; // another report was already handled
  if (fd < 0) {
    console.error(`accept4 failed: errno ${-fd}`); // EMFILE, ECONNABORTED, ...: keep serving
    return;
  }
  if (ctl(EPOLL.CTL_ADD, fd, CLIENT_EVENTS) < 0) {
    sys.close(fd);
    return;
  }
  clients.set(fd, { pending: null });
  served++;
  const from = decodeSockaddr(peer, peerLen[0]!);
  log(`fd ${fd}: connection from ${"port" in from ? `${from.address}:${from.port}` : from.family}`);
}

function closeClient(fd: number, why: string): void {
  ctl(EPOLL.CTL_DEL, fd, 0); // deregister first, then close
  sys.close(fd);
  clients.delete(fd);
  log(`fd ${fd}: closed (${why})`);
}

/** Send `data`; keep what the kernel did not take and ask for EPOLLOUT. False if the client is gone. */
function send(fd: number, client: Client, data: Uint8Array): boolean {
  let off = 0;
  while (off < data.byteLength) {
    const n = sys.send(fd, data.subarray(off), data.byteLength - off, MSG.NOSIGNAL);
    if (n >= 0) {
      off += n;
      continue;
    }
    if (n !== -EAGAIN) return false; // EPIPE, ECONNRESET
    client.pending = data.slice(off);
    ctl(EPOLL.CTL_MOD, fd, CLIENT_EVENTS | EPOLL.OUT);
    return true;
  }
  return true;
}

/** Edge-triggered: read until EAGAIN (or until the client stops taking our replies). */
function onReadable(fd: number, client: Client): void {
  while (client.pending === null) {
    const n = sys.read(fd, buf);
    if (n > 0) {
      log(`fd ${fd}: ${n} bytes`);
      if (!send(fd, client, buf.subarray(0, n))) return closeClient(fd, "send failed");
      continue;
    }
    if (n === -EAGAIN) return; // drained: wait for the next edge
    return closeClient(fd, n === 0 ? "end of stream" : `read errno ${-n}`);
  }
  // Replies are queued: stop reading until EPOLLOUT drains them (the unread
  // bytes stay in the kernel; onWritable comes back here to finish draining).
}

function onWritable(fd: number, client: Client): void {
  const data = client.pending;
  if (data === null) return;
  client.pending = null;
  if (!send(fd, client, data)) return closeClient(fd, "send failed");
  if (client.pending !== null) return; // still full
  ctl(EPOLL.CTL_MOD, fd, CLIENT_EVENTS);
  onReadable(fd, client); // we stopped mid-drain: ET will not tell us again
}

// SIGINT/SIGTERM: Deno runs the listener on this thread; the eventfd ends the parked wait.
const one = new Uint8Array(new BigUint64Array([1n]).buffer);
const onSignal = () => sys.write(stopFd, one, 8);
Deno.addSignalListener("SIGINT", onSignal);
Deno.addSignalListener("SIGTERM", onSignal);

const events = new Uint8Array(MAX_EVENTS * EPOLL_EVENT.size);
const eventsView = new DataView(events.buffer);
const local = new Uint8Array(SOCKADDR_STORAGE_SIZE);
const localLen = new Uint32Array([local.byteLength]);
check("getsockname", sys.getsockname(listenFd, local, localLen));
const bound = decodeSockaddr(local, localLen[0]!);
console.log(`listening on ${args.host}:${"port" in bound ? bound.port : args.port}`);

let running = true;
while (running) {
  const n = await sys.epollWaitAsync(epfd, events, MAX_EVENTS, -1); // off-thread
  for (let i = 0; i < n; i++) {
    const { events: bits, token: fd } = readEpollEvent(eventsView, i);
    if (fd === stopFd) {
      running = false;
      continue;
    }
    if (fd === listenFd) {
      acceptOne();
      continue;
    }
    const client = clients.get(fd);
    if (client === undefined) continue; // closed earlier in this batch
    if ((bits & EPOLL.OUT) !== 0) onWritable(fd, client);
    if (!clients.has(fd)) continue;
    if ((bits & (EPOLL.IN | EPOLL.RDHUP | EPOLL.HUP | EPOLL.ERR)) !== 0) onReadable(fd, client);
  }
}

Deno.removeSignalListener("SIGINT", onSignal);
Deno.removeSignalListener("SIGTERM", onSignal);
for (const fd of [...clients.keys()]) closeClient(fd, "server stopping");
sys.close(listenFd);
sys.close(stopFd);
sys.close(epfd);
console.log(`stopped after ${served} connection${served === 1 ? "" : "s"}`);
