/**
 * Faults against the real example servers, run as child processes: fd
 * exhaustion under a lowered `RLIMIT_NOFILE`, peers that reset mid-write,
 * connect and vanish, trickle a header (slowloris) or stop reading, and a
 * client that half-closes and keeps reading. After each, the server must
 * still serve, and its own fd count (read from `/proc/<pid>/fd` through
 * libc) must come back to where it was: nothing leaked in the server.
 *
 * Clients are blocking ffinet sockets with `SO_RCVTIMEO`/`SO_SNDTIMEO`, so
 * every wait is bounded.
 */
import { assert, assertEquals, assertMatch } from "@std/assert";
import { RLIMIT } from "../../ffi/constants.ts";
import { ErrnoError } from "../../ffi/errno.ts";
import { listOpenFds } from "../../ffi/fd.ts";
import { getrlimit, kill, setrlimit } from "../../ffi/process.ts";
import { Socket } from "../../ffi/socket.ts";
import { type ExampleServer, startExample } from "../_example_server.ts";
import { sleep, waitFor, withFdCheck } from "../_helpers.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Run `fn` with a server; always stop it and wait for it. */
async function withServer(
  name: string,
  args: string[],
  nofile: number | undefined,
  fn: (server: ExampleServer) => Promise<void>,
): Promise<void> {
  const server = await startExample(name, args, nofile);
  try {
    await fn(server);
    assert(!server.exited, `the server exited:\n${server.output()}`);
  } finally {
    await server.stop();
  }
}

/**
 * The server's open sockets, through libc (Deno refuses /proc without
 * --allow-all). Sockets only: the reactor opens its yield timer lazily.
 */
function serverFds(server: ExampleServer): number {
  let n = 0;
  for (const target of listOpenFds(server.pid).values()) if (target.startsWith("socket:")) n++;
  return n;
}

/** Wait until the server is back to (at most) `baseline` open fds. */
async function waitForServerFds(
  server: ExampleServer,
  baseline: number,
  what: string,
): Promise<void> {
  let now = -1;
  try {
    await waitFor(() => (now = serverFds(server)) <= baseline, 15_000, what);
  } catch {
    throw new Error(
      `${what}: the server still has ${now} sockets open, ${baseline} before:\n` +
        [...listOpenFds(server.pid)].map(([fd, t]) => `${fd} -> ${t}`).join("\n"),
    );
  }
}

/** A blocking client socket whose reads and writes give up after `timeoutMs`. */
function dial(port: number, timeoutMs = 10_000, receiveBufferSize?: number): Socket {
  const s = Socket.create("inet", "stream", { nonblocking: false });
  try {
    s.setOption("receiveTimeout", timeoutMs);
    s.setOption("sendTimeout", timeoutMs);
    if (receiveBufferSize !== undefined) s.setOption("receiveBufferSize", receiveBufferSize);
    if (s.connect({ family: "inet", address: "127.0.0.1", port }) !== "connected") {
      throw new Error(`Cannot connect to port ${port}: timed out`);
    }
    return s;
  } catch (e) {
    s.close();
    throw e;
  }
}

function sendAll(s: Socket, data: Uint8Array): void {
  for (let off = 0; off < data.byteLength;) {
    const n = s.write(data.subarray(off));
    if (n === null) throw new Error(`send timed out after ${off} of ${data.byteLength} bytes`);
    off += n;
  }
}

/** Read exactly `n` bytes; throws on EOF or timeout. */
function readExactly(s: Socket, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let off = 0; off < n;) {
    const got = s.read(out.subarray(off));
    if (got === null) throw new Error(`read timed out after ${off} of ${n} bytes`);
    if (got === 0) throw new Error(`EOF after ${off} of ${n} bytes`);
    off += got;
  }
  return out;
}

/** Read until EOF (at most `limit` bytes); throws on timeout. */
function readToEnd(s: Socket, limit = 64 << 20): Uint8Array {
  let buf = new Uint8Array(64 * 1024);
  let len = 0;
  for (;;) {
    if (len === buf.byteLength) {
      if (len >= limit) throw new Error(`more than ${limit} bytes before EOF`);
      const bigger = new Uint8Array(len * 2);
      bigger.set(buf);
      buf = bigger;
    }
    const got = s.read(buf.subarray(len));
    if (got === null) throw new Error(`read timed out after ${len} bytes, before EOF`);
    if (got === 0) return buf.subarray(0, len);
    len += got;
  }
}

/** One echo round trip on a blocking socket. */
function echoOnce(s: Socket, message: string): string {
  const data = encoder.encode(message);
  sendAll(s, data);
  return decoder.decode(readExactly(s, data.byteLength));
}

/** A parsed HTTP response. */
interface HttpResponse {
  status: number;
  headers: Map<string, string>;
  body: Uint8Array;
}

/** Reads HTTP/1.1 responses with a Content-Length from a blocking socket. */
class ResponseReader {
  #s: Socket;
  #buf = new Uint8Array(256 * 1024);
  #start = 0;
  #end = 0;
  constructor(s: Socket) {
    this.#s = s;
  }
  #fill(): void {
    if (this.#end === this.#buf.byteLength) {
      const live = this.#end - this.#start;
      if (live * 2 > this.#buf.byteLength) {
        const next = new Uint8Array(this.#buf.byteLength * 2);
        next.set(this.#buf.subarray(this.#start, this.#end));
        this.#buf = next;
      } else {
        this.#buf.copyWithin(0, this.#start, this.#end);
      }
      this.#start = 0;
      this.#end = live;
    }
    const n = this.#s.read(this.#buf.subarray(this.#end));
    if (n === null) throw new Error("read timed out in the middle of a response");
    if (n === 0) throw new Error("EOF in the middle of a response");
    this.#end += n;
  }
  next(): HttpResponse {
    let headEnd: number;
    for (;;) {
      const view = this.#buf.subarray(this.#start, this.#end);
      const i = decoder.decode(view.subarray(0, Math.min(view.byteLength, 16384))).indexOf(
        "\r\n\r\n",
      );
      if (i >= 0) {
        headEnd = this.#start + i + 4;
        break;
      }
      this.#fill();
    }
    const head = decoder.decode(this.#buf.subarray(this.#start, headEnd - 4)).split("\r\n");
    const m = head[0]!.match(/^HTTP\/1\.[01] (\d{3}) /);
    if (!m) throw new Error(`bad status line ${JSON.stringify(head[0])}`);
    const headers = new Map<string, string>();
    for (const line of head.slice(1)) {
      const colon = line.indexOf(":");
      headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
    }
    const length = Number(headers.get("content-length") ?? "0");
    while (this.#end - headEnd < length) {
      const offset = headEnd - this.#start;
      this.#fill();
      headEnd = this.#start + offset;
    }
    const body = this.#buf.slice(headEnd, headEnd + length);
    this.#start = headEnd + length;
    return { status: Number(m[1]), headers, body };
  }
  /** Whatever is buffered beyond the responses read so far. */
  get leftover(): number {
    return this.#end - this.#start;
  }
}

/** A body of `n` bytes whose content depends on `seed`. */
function pattern(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 16;
  }
  return out;
}

function postEcho(body: Uint8Array): Uint8Array {
  const head = encoder.encode(
    `POST /echo HTTP/1.1\r\nHost: faults\r\nContent-Length: ${body.byteLength}\r\n\r\n`,
  );
  const out = new Uint8Array(head.byteLength + body.byteLength);
  out.set(head);
  out.set(body, head.byteLength);
  return out;
}

/** `GET /` on a fresh connection: the server still serves. */
function assertServes(server: ExampleServer): void {
  const s = dial(server.port);
  try {
    sendAll(s, encoder.encode("GET / HTTP/1.1\r\nHost: faults\r\nConnection: close\r\n\r\n"));
    const res = new ResponseReader(s).next();
    assertEquals(res.status, 200);
    assertEquals(decoder.decode(res.body), "Hello, World!");
  } finally {
    s.close();
  }
}

/** `errno` name of an error, or its message. */
function why(e: unknown): string {
  return e instanceof ErrnoError ? e.code : (e as Error).message;
}

Deno.test("faults: fd exhaustion (RLIMIT_NOFILE 64): held connections keep echoing, the listener sheds and recovers", () =>
  withFdCheck(async () => {
    // Room for the held connections and the bursts in this process.
    const limit = getrlimit(RLIMIT.NOFILE);
    if (limit.soft < 1024) {
      setrlimit(RLIMIT.NOFILE, { soft: Math.min(1024, limit.hard), hard: limit.hard });
    }
    try {
      await withServer("echo_server.ts", [], 64, async (server) => {
        const baseline = serverFds(server);
        // Leave a few fds free in the server once these are held (≈30 with Deno's own ~28).
        const heldCount = Math.min(40, 64 - listOpenFds(server.pid).size - 6);
        assert(heldCount >= 8, `the server already has ${baseline} fds open`);
        const held: Socket[] = [];
        try {
          for (let i = 0; i < heldCount; i++) held.push(dial(server.port));
          held.forEach((s, i) => assertEquals(echoOnce(s, `held ${i}`), `held ${i}`));

          // 500 attempts in bursts of 50 held at once: the server runs out of fds.
          let echoed = 0, refused = 0;
          for (let burst = 0; burst < 10; burst++) {
            const socks: Socket[] = [];
            try {
              for (let i = 0; i < 50; i++) socks.push(dial(server.port));
              const states = socks.map((s, i) => {
                try {
                  sendAll(s, encoder.encode(`b${burst}c${i}`));
                  return "sent";
                } catch (e) {
                  return why(e);
                }
              });
              socks.forEach((s, i) => {
                const msg = `b${burst}c${i}`;
                if (states[i] !== "sent") {
                  refused++;
                  return;
                }
                try {
                  const buf = new Uint8Array(msg.length);
                  let n = 0;
                  while (n < buf.byteLength) {
                    const got = s.read(buf.subarray(n));
                    if (got === null) throw new Error(`no answer within 10 s for ${msg}`);
                    if (got === 0) break;
                    n += got;
                  }
                  if (n === 0) refused++; // shed: accepted and closed at once
                  else {
                    assertEquals(decoder.decode(buf), msg);
                    echoed++;
                  }
                } catch (e) {
                  if (e instanceof ErrnoError && e.code === "ECONNRESET") refused++;
                  else throw e;
                }
              });
            } finally {
              for (const s of socks) s.close();
            }
          }
          console.log(
            `fd exhaustion: server idle with ${baseline} sockets, ${heldCount} held, 500 attempts: ` +
              `${echoed} echoed, ${refused} shed`,
          );
          assertEquals(echoed + refused, 500);
          assert(refused > 0, "the server never ran out of fds: the test did not exhaust them");
          assert(echoed > 0, "no attempt was ever served");

          // The held connections were never disturbed, and the server is alive.
          held.forEach((s, i) => assertEquals(echoOnce(s, `again ${i}`), `again ${i}`));
          assert(!server.exited);
          kill(server.pid, 0);
        } finally {
          for (const s of held) s.close();
        }

        // Every fd comes back; then a full set of new connections is served.
        await waitForServerFds(server, baseline, "the server to close every connection");
        const fresh: Socket[] = [];
        try {
          for (let i = 0; i < heldCount; i++) fresh.push(dial(server.port));
          fresh.forEach((s, i) => assertEquals(echoOnce(s, `fresh ${i}`), `fresh ${i}`));
        } finally {
          for (const s of fresh) s.close();
        }
        await waitForServerFds(server, baseline, "the server to close the fresh connections");
      });
    } finally {
      setrlimit(RLIMIT.NOFILE, limit);
    }
  }));

Deno.test("faults: a peer that resets while the server writes megabytes; others are still served", () =>
  withFdCheck(() =>
    withServer("http_server.ts", [], undefined, async (server) => {
      assertServes(server);
      const baseline = serverFds(server);
      const body = pattern(1_000_000, 7);
      const request = postEcho(body);
      for (let round = 0; round < 3; round++) {
        // A small receive buffer keeps most of the 8 MB of responses queued in the server.
        const s = dial(server.port, 10_000, 4096);
        try {
          for (let i = 0; i < 8; i++) sendAll(s, request);
          const first = readExactly(s, 64 * 1024);
          assertMatch(decoder.decode(first.subarray(0, 16)), /^HTTP\/1\.1 200 /);
          s.setOption("linger", { seconds: 0 }); // close() now sends RST
        } finally {
          s.close();
        }
        assertServes(server);
      }
      await waitForServerFds(server, baseline, "the server to drop the reset connections");
      assertServes(server);
    })
  ));

Deno.test("faults: peers that connect and vanish (FIN or RST, with or without a partial request)", () =>
  withFdCheck(() =>
    withServer("http_server.ts", [], undefined, async (server) => {
      assertServes(server);
      const baseline = serverFds(server);
      for (let i = 0; i < 300; i++) {
        const s = dial(server.port);
        try {
          if (i % 3 === 1) sendAll(s, encoder.encode("GET / HTTP/1.1\r\nHo"));
          if (i % 2 === 0) s.setOption("linger", { seconds: 0 });
        } finally {
          s.close();
        }
      }
      assertServes(server);
      await waitForServerFds(server, baseline, "the server to drop the vanished peers");
      assertServes(server);
    })
  ));

Deno.test("faults: slowloris (one header byte every 300 ms) gets 408 or a closed connection within ~3 s", () =>
  withFdCheck(() =>
    withServer("http_server.ts", ["--header-timeout-ms", "1000"], undefined, async (server) => {
      const baseline = serverFds(server);
      const trickle = encoder.encode(
        "GET / HTTP/1.1\r\nHost: slowloris\r\nX-Padding: " + "a".repeat(200) + "\r\n",
      );
      const s = dial(server.port, 300);
      let got = "";
      let closed = false;
      let sent = 0;
      const start = performance.now();
      try {
        while (!closed && performance.now() - start < 10_000) {
          if (sent < trickle.byteLength) {
            try {
              sendAll(s, trickle.subarray(sent, sent + 1));
              sent++;
            } catch (e) {
              if (!(e instanceof ErrnoError)) throw e;
              sent = trickle.byteLength; // the server is gone: just read what is left
            }
          }
          const buf = new Uint8Array(1024);
          try {
            const n = s.read(buf); // waits up to 300 ms (SO_RCVTIMEO)
            if (n === 0) closed = true;
            else if (n !== null) got += decoder.decode(buf.subarray(0, n));
          } catch (e) {
            if (e instanceof ErrnoError && e.code === "ECONNRESET") closed = true;
            else throw e;
          }
        }
      } finally {
        s.close();
      }
      const elapsed = performance.now() - start;
      console.log(
        `slowloris: ${sent} bytes trickled, ${closed ? "closed" : "open"} after ` +
          `${Math.round(elapsed)} ms, got ${JSON.stringify(got.split("\r\n")[0] ?? "")}`,
      );
      assert(closed, "the slow client was never cut off");
      assert(sent < trickle.byteLength, "the whole head went through before the cut-off");
      if (got !== "") assertMatch(got, /^HTTP\/1\.1 408 /);
      // 1 s header timeout, checked once a second: ~2 s; generous for a loaded machine.
      assert(elapsed < 6000, `cut off only after ${Math.round(elapsed)} ms`);
      assertServes(server);
      await waitForServerFds(server, baseline, "the server to drop the slow client");
    })
  ));

Deno.test("faults: peers that reset right after a good request and a malformed one (regression: crashed the server)", () =>
  withFdCheck(() =>
    withServer("http_server.ts", [], undefined, async (server) => {
      const baseline = serverFds(server);
      const batch = encoder.encode("GET / HTTP/1.1\r\nHost: a\r\n\r\nBROKEN\r\n\r\n");
      for (let i = 0; i < 200; i++) {
        const s = dial(server.port);
        try {
          sendAll(s, batch);
          s.setOption("linger", { seconds: 0 }); // RST before the server answers
        } finally {
          s.close();
        }
      }
      await sleep(200);
      assert(!server.exited, `the server crashed:\n${server.output()}`);
      assertServes(server);
      await waitForServerFds(server, baseline, "the server to drop the reset peers");
    })
  ));

Deno.test("faults: header timeout on a connection already closing with megabytes queued (regression: crashed the server)", () =>
  withFdCheck(() =>
    withServer("http_server.ts", ["--header-timeout-ms", "1000"], undefined, async (server) => {
      const baseline = serverFds(server);
      const body = pattern(1_000_000, 11);
      const s = dial(server.port, 15_000, 4096);
      try {
        // 8 MB of responses, the last with Connection: close, then a partial request
        // the header timeout sees while the connection is still flushing.
        for (let i = 0; i < 7; i++) sendAll(s, postEcho(body));
        sendAll(
          s,
          encoder.encode(
            `POST /echo HTTP/1.1\r\nHost: a\r\nConnection: close\r\nContent-Length: ${body.byteLength}\r\n\r\n`,
          ),
        );
        sendAll(s, body);
        sendAll(s, encoder.encode("GET"));
        await sleep(2500); // at least one sweep past the 1 s header timeout
        assert(!server.exited, `the server crashed:\n${server.output()}`);
        assertServes(server);
        // The closing connection still delivers all eight responses, then EOF.
        const reader = new ResponseReader(s);
        for (let i = 0; i < 8; i++) {
          const res = reader.next();
          assertEquals(res.status, 200);
          assertEquals(res.body.byteLength, body.byteLength);
        }
        assertEquals(readToEnd(s).byteLength + reader.leftover, 0);
      } finally {
        s.close();
      }
      await waitForServerFds(server, baseline, "the server to close the flushed connection");
    })
  ));

/** One keep-alive client looping on `path` until the server closes; counts what it saw. */
async function loadClient(
  port: number,
  path: string,
  stats: { responses: number; truncated: number; unanswered: number; slowDone: number },
  state = { inFlightSince: -1 },
): Promise<void> {
  let conn: Deno.Conn;
  try {
    conn = await Deno.connect({ hostname: "127.0.0.1", port });
  } catch {
    return; // refused: the server stopped accepting
  }
  const buf = new Uint8Array(4096);
  let pending = "";
  try {
    for (;;) {
      try {
        state.inFlightSince = performance.now();
        await conn.write(encoder.encode(`GET ${path} HTTP/1.1\r\nHost: load\r\n\r\n`));
      } catch {
        stats.unanswered++; // closed between requests
        return;
      }
      // Read one response: head, then Content-Length bytes.
      for (;;) {
        const headEnd = pending.indexOf("\r\n\r\n");
        if (headEnd >= 0) {
          const length = Number(pending.match(/\r\ncontent-length: (\d+)/i)?.[1] ?? "NaN");
          if (pending.length >= headEnd + 4 + length) {
            const head = pending.slice(0, headEnd);
            assertMatch(head, /^HTTP\/1\.1 200 /);
            const body = pending.slice(headEnd + 4, headEnd + 4 + length);
            assertEquals(body, path === "/slow" ? "slow\n" : "Hello, World!");
            pending = pending.slice(headEnd + 4 + length);
            stats.responses++;
            state.inFlightSince = -1;
            if (path === "/slow") stats.slowDone++;
            if (/\r\nconnection: close/i.test(head)) return;
            break;
          }
        }
        let n: number | null;
        try {
          n = await conn.read(buf);
        } catch {
          n = null; // reset
        }
        if (n === null) {
          if (pending === "") stats.unanswered++;
          else stats.truncated++;
          return;
        }
        pending += decoder.decode(buf.subarray(0, n));
      }
    }
  } finally {
    conn.close();
  }
}

Deno.test("faults: SIGTERM while 24 clients load http_server: in-flight responses complete, none truncated, exit 0", () =>
  withFdCheck(async () => {
    const server = await startExample("http_server.ts", ["--drain-ms", "5000"]);
    try {
      const stats = { responses: 0, truncated: 0, unanswered: 0, slowDone: 0 };
      const slow = Array.from({ length: 4 }, () => ({ inFlightSince: -1 }));
      const clients = [
        ...Array.from({ length: 20 }, () => loadClient(server.port, "/", stats)),
        ...slow.map((state) => loadClient(server.port, "/slow", stats, state)),
      ];
      await waitFor(
        () => stats.responses >= 200 && stats.slowDone >= 4,
        15_000,
        "load to build up",
      );
      await sleep(200); // the next /slow requests are now well in flight
      const slowBefore = stats.slowDone;
      const t0 = performance.now();
      // /slow requests the server has surely read by now must be answered.
      const mustFinish = slow.filter((s) => s.inFlightSince >= 0 && t0 - s.inFlightSince > 50)
        .length;
      Deno.kill(server.pid, "SIGTERM");
      await Promise.all(clients);
      const status = await server.status; // no second signal: it may land after the drain

      const ms = Math.round(performance.now() - t0);
      console.log(
        `SIGTERM under load: ${stats.responses} responses, ${stats.slowDone - slowBefore} /slow ` +
          `of ${mustFinish} in flight finished after the signal, ${stats.unanswered} idle ` +
          `keep-alive connections closed (a request racing the close is unanswered), ` +
          `${stats.truncated} truncated; exit ${status.code} after ${ms} ms`,
      );
      assertEquals(stats.truncated, 0, "a response was cut off");
      assert(mustFinish > 0, "no /slow request was in flight at the signal");
      assert(
        stats.slowDone - slowBefore >= mustFinish,
        `${mustFinish} /slow requests were in flight, ${stats.slowDone - slowBefore} finished`,
      );
      assertEquals(status.code, 0, server.output());
      assert(ms < 5000, `the drain took ${ms} ms`);
    } finally {
      await server.stop();
    }
  }));

Deno.test("faults: a reader that stops for 1 s while 8 MB of responses wait gets every byte intact", () =>
  withFdCheck(() =>
    withServer("http_server.ts", [], undefined, async (server) => {
      const bodies = Array.from({ length: 8 }, (_, i) => pattern(1_000_000, 100 + i));
      const s = dial(server.port, 15_000);
      try {
        for (const body of bodies) sendAll(s, postEcho(body));
        await sleep(1000); // read nothing while the server holds megabytes for us
        const reader = new ResponseReader(s);
        for (const [i, body] of bodies.entries()) {
          const res = reader.next();
          assertEquals(res.status, 200, `response ${i}`);
          assertEquals(res.body.byteLength, body.byteLength, `response ${i}`);
          assert(res.body.every((b, j) => b === body[j]), `response ${i}: the body differs`);
        }
        assertEquals(reader.leftover, 0);
      } finally {
        s.close();
      }
      assertServes(server);
    })
  ));

Deno.test("faults: half-close (shutdown(SHUT_WR)) after the request; the whole response still arrives", () =>
  withFdCheck(() =>
    withServer("http_server.ts", [], undefined, async (server) => {
      const baseline = serverFds(server);
      {
        const s = dial(server.port);
        try {
          sendAll(s, encoder.encode("GET / HTTP/1.1\r\nHost: half\r\n\r\n"));
          s.shutdown("write");
          const all = readToEnd(s);
          assertMatch(decoder.decode(all), /^HTTP\/1\.1 200 [^]*\r\n\r\nHello, World!$/);
        } finally {
          s.close();
        }
      }
      {
        const body = pattern(1_000_000, 3);
        const s = dial(server.port);
        try {
          sendAll(s, postEcho(body));
          s.shutdown("write");
          const all = readToEnd(s); // the response, then EOF
          const text = decoder.decode(all.subarray(0, 1024));
          const headEnd = text.indexOf("\r\n\r\n") + 4;
          assertMatch(text, /^HTTP\/1\.1 200 /);
          assertMatch(text.slice(0, headEnd), /\r\ncontent-length: 1000000\r\n/i);
          assertEquals(all.byteLength - headEnd, body.byteLength);
          assert(all.subarray(headEnd).every((b, j) => b === body[j]), "the body differs");
        } finally {
          s.close();
        }
      }
      await waitForServerFds(server, baseline, "the server to close half-closed connections");
    })
  ));
