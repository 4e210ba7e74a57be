/**
 * The load generator of `deno task bench`, written on ffinet itself (so the
 * benchmark needs no C compiler): many loopback connections, each keeping
 * `depth` messages in flight for `seconds`, checking every byte.
 *
 *     deno run --allow-ffi bench/load.ts echo PORT CONNS DEPTH SIZE SECONDS
 *     deno run --allow-ffi bench/load.ts http PORT CONNS DEPTH SECONDS
 *
 * Prints one JSON line: `{"ops":…, "ops_per_s":…, "bytes":…, "connections":…,
 * "mismatches":…, "errors":…}` (`bytes`: echoed bytes received and checked
 * in the measured time; `connections`: how many connected).
 *
 * @module
 */
import { connect } from "../reactor/connect.ts";
import type { Connection } from "../reactor/connection.ts";
import { Reactor } from "../reactor/reactor.ts";

const [mode, portText, connsText, depthText, ...rest] = Deno.args;
const port = Number(portText);
const conns = Number(connsText);
const depth = Number(depthText);
const size = mode === "echo" ? Number(rest[0]) : 0;
const seconds = Number(mode === "echo" ? rest[1] : rest[0]);
if (!(mode === "echo" || mode === "http") || !(port > 0) || !(conns > 0) || !(depth > 0)) {
  console.error(
    "usage: load.ts echo PORT CONNS DEPTH SIZE SECONDS | http PORT CONNS DEPTH SECONDS",
  );
  Deno.exit(2);
}

const reactor = new Reactor({ busyWaitMs: 2 });
let ops = 0, mismatches = 0, errors = 0, received = 0;
let running = true;

// Each connection sends a periodic byte stream (a random pattern of prime
// length, so message boundaries never line up with it) and checks every
// echoed byte against the position it should have in that stream.
const PERIOD = 65521;
function pattern(seed: number): Uint8Array {
  const p = new Uint8Array(PERIOD + 65536);
  let s = seed >>> 0;
  for (let i = 0; i < PERIOD; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    p[i] = s >>> 16;
  }
  // Repeat the start after the end, so any window of up to 64 KiB is contiguous.
  // (Not copyWithin: its source range would overlap the bytes being written.)
  for (let i = PERIOD; i < p.length; i++) p[i] = p[i - PERIOD]!;
  return p;
}

function startEcho(conn: Connection, id: number): void {
  const stream = pattern(id + 1);
  let txPos = 0, rxPos = 0, got = 0;
  const send = () => {
    conn.write(stream.subarray(txPos, txPos + size));
    txPos = (txPos + size) % PERIOD;
  };
  conn.onData = (data) => {
    let off = 0;
    while (off < data.length) {
      const n = Math.min(data.length - off, 65536);
      for (let i = 0; i < n; i++) if (data[off + i] !== stream[rxPos + i]) mismatches++;
      rxPos = (rxPos + n) % PERIOD;
      off += n;
    }
    got += data.length;
    received += data.length;
    while (got >= size) {
      got -= size;
      ops++;
      if (running) send();
    }
  };
  for (let d = 0; d < depth; d++) send();
}

const REQUEST = new TextEncoder().encode("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
function startHttp(conn: Connection): void {
  const batch = new Uint8Array(REQUEST.length * depth);
  for (let d = 0; d < depth; d++) batch.set(REQUEST, d * REQUEST.length);
  let pending = "";
  let outstanding = depth;
  conn.onData = (data) => {
    pending += String.fromCharCode(...data);
    for (;;) {
      const end = pending.indexOf("\r\n\r\n");
      if (end < 0) break;
      const m = /content-length: *(\d+)/i.exec(pending.slice(0, end));
      const total = end + 4 + (m ? Number(m[1]) : 0);
      if (pending.length < total) break;
      if (!pending.startsWith("HTTP/1.1 200")) mismatches++;
      pending = pending.slice(total);
      ops++;
      if (--outstanding === 0 && running) {
        outstanding = depth;
        conn.write(batch);
      }
    }
  };
  conn.write(batch);
}

const open: Connection[] = [];
const run = reactor.run();
for (let i = 0; i < conns; i++) {
  try {
    const conn = await connect(reactor, { host: "127.0.0.1", port }, { timeoutMs: 5000 });
    conn.onClose = (_c, e) => {
      if (e && running) errors++;
    };
    open.push(conn);
    if (mode === "echo") startEcho(conn, i);
    else startHttp(conn);
  } catch {
    errors++;
  }
}
const t0 = performance.now();
const opsAt0 = ops;
const receivedAt0 = received;
await new Promise<void>((r) => reactor.setTimeout(r, seconds * 1000));
const elapsed = (performance.now() - t0) / 1000;
const done = ops - opsAt0;
const bytes = received - receivedAt0;
running = false;
for (const c of open) c.abort();
reactor.stop();
await run;
reactor.close();
console.log(JSON.stringify({
  ops: done,
  ops_per_s: Math.round(done / elapsed),
  bytes,
  connections: open.length,
  mismatches,
  errors,
}));
