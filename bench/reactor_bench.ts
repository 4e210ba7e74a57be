/**
 * Microbenchmarks of the reactor's wait/dispatch path: 64 eventfds kept
 * readable (level-triggered, never drained), so every `epoll_wait` returns a
 * full batch of 64 events.
 *
 * - `reactor`: `Reactor.run()` until 100 batches (6400 events) reached the
 *   callbacks: `epoll_wait(…, 0)`, token/generation check, `Readiness`
 *   lookup, callback, and the loop's microtask checkpoint per batch (and a
 *   yield to Deno's event loop every `sliceMs`).
 * - `bare`: the same 100 `epoll_wait(…, 0)` calls written by hand on
 *   `ffi/syscalls.ts`, decoding each event and calling its callback through a
 *   token table, with no reactor.
 *
 * Divide the time per iteration by 6400 for the cost per event.
 *
 *     deno bench --allow-ffi bench/reactor_bench.ts
 *
 * @module
 */
import { EFD, EPOLL } from "../ffi/constants.ts";
import { EPOLL_EVENT } from "../ffi/epoll_event.ts";
import * as sys from "../ffi/syscalls.ts";
import { Interest, Reactor, Readiness } from "../reactor/mod.ts";

const FDS = 64;
const BATCHES = 100;
const EVENTS = FDS * BATCHES;

const one = new Uint8Array(new BigUint64Array([1n]).buffer);
function readyEventfd(): number {
  const fd = sys.eventfd(0, EFD.NONBLOCK | EFD.CLOEXEC);
  if (fd < 0) throw new Error(`Cannot create eventfd: errno ${-fd}`);
  sys.write(fd, one, 8); // readable until read, which nobody does
  return fd;
}

// --- The reactor ---------------------------------------------------------
const reactorFds = Array.from({ length: FDS }, readyEventfd);
let dispatched = 0;
let target = 0;
function makeReactor(sliceMs: number): Reactor {
  const reactor = new Reactor({ sliceMs });
  for (const fd of reactorFds) {
    reactor.register(fd, Interest.READABLE, () => {
      if (++dispatched === target) reactor.stop();
    });
  }
  return reactor;
}
const reactor = makeReactor(2);
const reactorLongSlice = makeReactor(1000);

async function runReactor(r: Reactor): Promise<void> {
  target = dispatched + EVENTS;
  await r.run();
  if (dispatched < target) throw new Error("Cannot bench: the reactor stopped early");
}

// --- The bare loop -------------------------------------------------------
const bareFds = Array.from({ length: FDS }, readyEventfd);
const epfd = sys.epoll_create1(EPOLL.CLOEXEC);
const stride = EPOLL_EVENT.size / 4;
const dw = EPOLL_EVENT.dataOffset / 4;
const ev = new Uint8Array(EPOLL_EVENT.size);
const evWords = new Uint32Array(ev.buffer);
const callbacks: ((r: Readiness) => void)[] = [];
let bareCount = 0;
bareFds.forEach((fd, i) => {
  evWords.fill(0);
  evWords[0] = EPOLL.IN;
  evWords[dw] = i; // token
  evWords[dw + 1] = 1; // generation
  if (sys.epoll_ctl(epfd, EPOLL.CTL_ADD, fd, ev) < 0) throw new Error("Cannot bench: epoll_ctl");
  callbacks.push(() => bareCount++);
});
const events = new Uint8Array(FDS * EPOLL_EVENT.size);
const words = new Uint32Array(events.buffer);

function runBare(): void {
  for (let b = 0; b < BATCHES; b++) {
    const n = sys.epoll_wait(epfd, events, FDS, 0);
    for (let i = 0, base = 0; i < n; i++, base += stride) {
      const token = words[base + dw]!;
      if (words[base + dw + 1] !== 1) continue; // generation check, as the reactor does
      callbacks[token]!(Readiness.of(words[base]!));
    }
  }
}

function runBareWaitOnly(): void {
  for (let b = 0; b < BATCHES; b++) sys.epoll_wait(epfd, events, FDS, 0);
}

Deno.bench({
  name: `bare epoll_wait(…, 0) + decode + callback (${EVENTS} events)`,
  group: "dispatch",
  baseline: true,
  fn: runBare,
});

Deno.bench({
  name: `Reactor.run() dispatch, sliceMs 2 (${EVENTS} events)`,
  group: "dispatch",
  // An `async` function: Deno.bench only awaits what async functions return.
  fn: async () => await runReactor(reactor),
});

Deno.bench({
  name: `Reactor.run() dispatch, sliceMs 1000 (${EVENTS} events)`,
  group: "dispatch",
  fn: async () => await runReactor(reactorLongSlice),
});

Deno.bench({
  name: `bare epoll_wait(…, 0) alone, ${BATCHES} calls (${EVENTS} events)`,
  group: "dispatch",
  fn: runBareWaitOnly,
});

globalThis.addEventListener("unload", () => {
  reactor.close();
  reactorLongSlice.close();
  for (const fd of [...reactorFds, ...bareFds, epfd]) sys.close(fd);
  if (bareCount === 0) console.error("the bare loop dispatched nothing");
});
