/**
 * EMFILE for real: the test process lowers its own RLIMIT_NOFILE so that only
 * ~20 fds are left, runs an echo Listener, and a child process opens 100
 * client connections. The listener must neither spin (a level-triggered
 * listen socket it cannot accept from) nor stall: it sheds what it cannot
 * hold, keeps serving the connections it holds, and accepts again as soon
 * as fds are freed. Each test runs under a watchdog thread: a listener that
 * spins synchronously fails the run (the process is killed with a message)
 * instead of hanging it.
 */
import { assert, assertEquals } from "@std/assert";
import { O, RLIMIT } from "../../ffi/constants.ts";
import { closeFd, eventfd, eventfdWrite, listOpenFds } from "../../ffi/fd.ts";
import { getrlimit, openFile, setrlimit } from "../../ffi/process.ts";
import { Socket } from "../../ffi/socket.ts";
import type { InetAddress } from "../../ffi/sockaddr.ts";
import { Interest, Listener, Reactor } from "../../reactor/mod.ts";
import { sleep, waitFor, withFdCheck } from "../_helpers.ts";
import { atLeast, DENO_SPAWN_SKIP, skipped } from "../ffi/_emulation.ts";
import { withWatchdog } from "./_util.ts";

/** The client side, run by a child Deno with the normal fd limit. */
const CLIENT_SCRIPT = `
const [port, count] = Deno.args.map(Number);
const enc = new TextEncoder();
const dec = new TextDecoder();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const lines = Deno.stdin.readable.pipeThrough(new TextDecoderStream()).getReader();
let pending = "";
async function command() {
  for (;;) {
    const nl = pending.indexOf("\\n");
    if (nl >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      return line;
    }
    const { value, done } = await lines.read();
    if (done) Deno.exit(3);
    pending += value;
  }
}
async function probe(conn, tag) {
  try {
    await conn.write(enc.encode(tag));
  } catch {
    return "shed";
  }
  const buf = new Uint8Array(64);
  let got = "";
  const reading = (async () => {
    try {
      while (got.length < tag.length) {
        const n = await conn.read(buf);
        if (n === null) return got.length === 0 ? "shed" : "bad";
        got += dec.decode(buf.subarray(0, n));
      }
      return got === tag ? "served" : "bad";
    } catch {
      return "shed";
    }
  })();
  return await Promise.race([reading, sleep(3000).then(() => "pending")]);
}
async function round(name, conns) {
  const results = await Promise.all(conns.map((c, i) => probe(c, name + ":" + i + ";")));
  const counts = { served: 0, shed: 0, pending: 0, bad: 0 };
  for (const r of results) counts[r]++;
  console.log(JSON.stringify({ round: name, ...counts }));
  return results;
}
async function open(n) {
  const conns = [];
  for (let i = 0; i < n; i++) conns.push(await Deno.connect({ hostname: "127.0.0.1", port }));
  return conns;
}
const first = await open(count);
const results = await round("first", first);
const served = first.filter((_, i) => results[i] === "served");
const [, k] = (await command()).split(" ");
for (const c of served.splice(0, Number(k))) c.close();
await sleep(300); // let the server see the EOFs and close its side
const fresh = await open(Number(k));
await round("fresh", fresh);
await round("held", served);
console.log(JSON.stringify({ round: "done" }));
Deno.exit(0);
`;

/** Lines of a child's stdout, one at a time. */
class LineReader {
  #reader: ReadableStreamDefaultReader<string>;
  #buffer = "";
  constructor(stream: ReadableStream<Uint8Array>) {
    this.#reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  }
  async next(): Promise<string> {
    for (;;) {
      const nl = this.#buffer.indexOf("\n");
      if (nl >= 0) {
        const line = this.#buffer.slice(0, nl);
        this.#buffer = this.#buffer.slice(nl + 1);
        return line;
      }
      const { value, done } = await this.#reader.read();
      if (done) throw new Error(`Cannot read a line: the child's output ended ("${this.#buffer}")`);
      this.#buffer += value;
    }
  }
  async drain(): Promise<void> {
    while (!(await this.#reader.read()).done) { /* discard */ }
  }
}

interface Round {
  round: string;
  served: number;
  shed: number;
  pending: number;
  bad: number;
}

const SHED = "EMFILE: with ~20 fds left, 100 clients are shed or served; no spin, no stall";
Deno.test(
  SHED,
  { ignore: skipped(SHED, DENO_SPAWN_SKIP) },
  () =>
    withWatchdog(90_000, SHED, () =>
      withFdCheck(async () => {
        const reactor = new Reactor();
        const listener = Listener.listen(reactor, { host: "127.0.0.1", port: 0 }, (conn) => {
          conn.onData = (data) => {
            if (!conn.write(data)) conn.pause();
          };
          conn.onDrain = () => conn.resume();
        });
        const port = (listener.address() as InetAddress).port;
        const dir = await Deno.makeTempDir({ prefix: "ffinet-emfile-" });
        const script = `${dir}/clients.js`;
        await Deno.writeTextFile(script, CLIENT_SCRIPT);
        const child = new Deno.Command(Deno.execPath(), {
          args: ["run", "--allow-net", script, String(port), "100"],
          stdin: "piped",
          stdout: "piped",
          stderr: "inherit",
        }).spawn();
        const lines = new LineReader(child.stdout);
        const stdin = child.stdin.getWriter();
        const running = reactor.run();
        const saved = getrlimit(RLIMIT.NOFILE);
        const killer = setTimeout(() => child.kill("SIGKILL"), 25_000);
        try {
          // Leave 20 fd numbers free: a new fd must be below the soft limit, and
          // the lowest free number is used, so the limit goes just past the
          // 20th free number (fds already open above it stay usable).
          const open = listOpenFds();
          const spare = 20;
          let limit = 0;
          for (let free = 0; free < spare; limit++) if (!open.has(limit)) free++;
          setrlimit(RLIMIT.NOFILE, { soft: limit, hard: saved.hard });

          const first = JSON.parse(await lines.next()) as Round;
          assertEquals(first.round, "first");
          assertEquals(first.bad, 0);
          assertEquals(first.pending, 0, "some clients were neither served nor shed (a stall)");
          assertEquals(first.served + first.shed, 100);
          assert(listener.stats.shed > 0, "nothing was shed");
          assertEquals(listener.stats.accepted, first.served);
          assert(first.served >= 10 && first.served <= spare, `served ${first.served} of ${spare}`);

          // Quiet: the listener must not spin on its (level-triggered) socket.
          const before = reactor.stats.events;
          await sleep(300);
          const quietEvents = reactor.stats.events - before;
          assert(quietEvents < 50, `${quietEvents} events in 300 quiet ms: the listener spins`);
          assert(reactor.stats.events < 20_000, `${reactor.stats.events} events in all`);

          // Free 10 connections: 10 new clients are served, the held ones still are.
          await stdin.write(new TextEncoder().encode("close 10\n"));
          const fresh = JSON.parse(await lines.next()) as Round;
          assertEquals(fresh, { round: "fresh", served: 10, shed: 0, pending: 0, bad: 0 });
          const held = JSON.parse(await lines.next()) as Round;
          assertEquals(held, {
            round: "held",
            served: first.served - 10,
            shed: 0,
            pending: 0,
            bad: 0,
          });
          assertEquals(JSON.parse(await lines.next()).round, "done");
          assertEquals((await child.status).code, 0);
          console.log(
            `spare fds ${spare}: served ${first.served}, shed ${listener.stats.shed}, ` +
              `pauses ${listener.stats.pauses}, reactor events ${reactor.stats.events}`,
          );
        } finally {
          setrlimit(RLIMIT.NOFILE, saved);
          clearTimeout(killer);
          await stdin.close().catch(() => {});
          await lines.drain();
          await child.status;
          // The child is gone: every server-side connection sees EOF and closes.
          const end = Date.now() + 3000;
          while (reactor.stats.registrations > 1 && Date.now() < end) await sleep(10);
          listener.close();
          reactor.stop();
          await running;
          reactor.close();
          await Deno.remove(dir, { recursive: true });
        }
      })),
);

const BUSY = "EMFILE: a busy reactor with no fd left still yields to Deno and keeps running";
Deno.test(BUSY, () =>
  withWatchdog(60_000, BUSY, () =>
    withFdCheck(async () => {
      // Regression: the reactor's yield to Deno opened its fds lazily and threw
      // EMFILE, stopping the reactor, the first time it was busy at the limit.
      const reactor = new Reactor();
      const efd = eventfd({ nonblock: true });
      eventfdWrite(efd, 1); // never drained: ready on every (level-triggered) wait
      let calls = 0;
      const reg = reactor.register(efd, Interest.READABLE, () => calls++);
      const saved = getrlimit(RLIMIT.NOFILE);
      const open = listOpenFds();
      let limit = 0;
      while (open.has(limit)) limit++; // the lowest free number: no fd can be opened
      let ticks = 0;
      const ticker = setInterval(() => ticks++, 10);
      try {
        setrlimit(RLIMIT.NOFILE, { soft: limit, hard: saved.hard });
        const stopper = setTimeout(() => reactor.stop(), 300);
        try {
          await reactor.run();
        } finally {
          clearTimeout(stopper);
        }
      } finally {
        setrlimit(RLIMIT.NOFILE, saved);
        clearInterval(ticker);
        reg.deregister();
        closeFd(efd);
        reactor.close();
      }
      // Emulated (qemu-user) the loop runs ~10x slower: atLeast() divides the
      // bound by TIME_SCALE there; natively it stays 1000.
      assert(calls > atLeast(1000), `only ${calls} callbacks while busy`);
      assert(ticks >= 5, `Deno's timers ran ${ticks} times in 300 busy ms`);
    })));

const PAUSE =
  "EMFILE: with no spare fd at all, accepting pauses, then resumes by itself once fds are freed";
Deno.test(PAUSE, () =>
  withWatchdog(60_000, PAUSE, () =>
    withFdCheck(async () => {
      await using reactor = new Reactor();
      // The listening socket, made before the fds run out; the listener adopts it.
      const lsock = Socket.create("inet", "stream");
      lsock.bind({ family: "inet", address: "127.0.0.1", port: 0 });
      lsock.listen(16);
      const addr = lsock.localAddress() as InetAddress;
      const client = Socket.create("inet", "stream"); // its fd exists before the fds run out
      const saved = getrlimit(RLIMIT.NOFILE);
      const fillers: number[] = [];
      let accepted = 0;
      let listener: Listener | undefined;
      const running = reactor.run();
      try {
        // Take every fd number below a lowered soft limit.
        const open = listOpenFds();
        let limit = 0;
        for (let free = 0; free < 8; limit++) if (!open.has(limit)) free++;
        setrlimit(RLIMIT.NOFILE, { soft: limit, hard: saved.hard });
        for (;;) {
          try {
            fillers.push(openFile("/dev/null", O.RDONLY | O.CLOEXEC));
          } catch {
            break; // EMFILE
          }
        }
        // No fd left even for the listener's spare: the EMFILE trick cannot shed.
        listener = Listener.listen(
          reactor,
          { fd: lsock.release(), emfileRetryMs: 50 },
          (conn) => {
            accepted++;
            conn.close();
          },
        );
        client.connect(addr);
        await waitFor(() => listener!.stats.pauses >= 1, 5000, "accepting to pause");
        assertEquals(accepted, 0);
        assertEquals(listener.stats.shed, 0, "a connection was shed without a spare fd");
        // Free the fds: the listener must start accepting again by itself.
        for (const fd of fillers.splice(0)) closeFd(fd);
        setrlimit(RLIMIT.NOFILE, saved);
        await waitFor(() => accepted === 1, 5000, "accepting to resume after the pause");
        assertEquals(listener.paused, false);
      } finally {
        for (const fd of fillers) closeFd(fd);
        setrlimit(RLIMIT.NOFILE, saved);
        client.close();
        listener?.close();
        if (listener === undefined) lsock.close();
        reactor.stop();
        await running;
      }
    })));
