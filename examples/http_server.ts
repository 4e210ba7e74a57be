/**
 * A small HTTP/1.1 server on ffinet's reactor: request line, headers,
 * `Content-Length` bodies, keep-alive, pipelining (the responses to one
 * batch of pipelined requests leave in one write), `Connection: close`;
 * malformed request → 400, oversized header → 431, oversized body → 413.
 *
 * Routes: `GET /` → "Hello, World!"; `GET /stats` → reactor and listener
 * counters as JSON; `GET /slow` → answers after 500 ms (for drain tests);
 * `POST /echo` → the body back. Anything else → 404.
 *
 * `--user-id`/`--group-id`: after binding (e.g. port 80 as root), drop to
 * that uid/gid (supplementary groups cleared) before serving.
 *
 * SIGTERM/SIGINT: stop accepting, finish in-flight requests (up to
 * `--drain-ms`), close idle keep-alive connections, exit 0.
 *
 *     deno run --allow-ffi --allow-env examples/http_server.ts --host 127.0.0.1 --port 8080
 *
 * @module
 */
import { type Connection, Listener, Reactor, setgid, setgroups, setuid } from "../mod.ts";
import { integerFlag, parseArgs } from "./_args.ts";
import { HttpParseError, HttpParser, type HttpRequest } from "./http/parser.ts";
import { errorResponse, helloWorldResponse, writeResponse } from "./http/response.ts";

const args = parseArgs(Deno.args, {
  usage: "http_server.ts [--host H] [--port P] [--reuse-port] [--idle-timeout-ms N] " +
    "[--header-timeout-ms N] [--drain-ms N] [--busy-wait-ms N] [--slice-ms N] [--user-id UID] " +
    "[--group-id GID]",
  defaults: { host: "127.0.0.1", port: 8080 },
  booleans: ["reuse-port"],
  strings: {
    "idle-timeout-ms": "60000",
    "header-timeout-ms": "10000",
    "drain-ms": "10000",
    "busy-wait-ms": "10",
    "slice-ms": "10",
    "user-id": "",
    "group-id": "",
  },
});
const numberFlag = (name: string): number =>
  integerFlag(args, name, 0, "a whole number of milliseconds");
const idleTimeoutMs = numberFlag("idle-timeout-ms");
const headerTimeoutMs = numberFlag("header-timeout-ms");
const drainMs = numberFlag("drain-ms");

interface HttpConn {
  parser: HttpParser;
  /** When the request being received started (for the header timeout), or -1. */
  started: number;
  /** Responses still being produced (e.g. /slow). */
  pending: number;
}

// A dedicated server: the reactor may keep this thread for up to 10 ms while
// traffic flows (Deno's own timers and I/O wait that long at most).
const reactor = new Reactor({
  busyWaitMs: numberFlag("busy-wait-ms"),
  sliceMs: integerFlag(args, "slice-ms", 1, "a whole number of milliseconds"),
});
const conns = new Set<Connection>();
let draining = false;
let requests = 0;
let scratch = new Uint8Array(64 * 1024);

function route(req: HttpRequest, conn: Connection, state: HttpConn): Uint8Array | null {
  requests++;
  const keepAlive = req.keepAlive && !draining;
  const target = req.target;
  if (target === "/" && (req.method === "GET" || req.method === "HEAD")) {
    return req.method === "GET"
      ? helloWorldResponse(keepAlive ? req : { keepAlive: false })
      : writeResponse(200, "Hello, World!", { version: req.version, keepAlive, omitBody: true });
  }
  if (target === "/stats" && req.method === "GET") {
    const body = JSON.stringify({
      pid: Deno.pid,
      worker: Deno.env.get("FFINET_WORKER_ID") ?? null,
      connections: conns.size,
      requests,
      reactor: reactor.stats,
      listener: listener.stats,
    });
    return writeResponse(200, body, {
      contentType: "application/json",
      keepAlive,
      version: req.version,
    });
  }
  if (target === "/slow" && req.method === "GET") {
    state.pending++;
    reactor.setTimeout(() => {
      state.pending--;
      if (conn.state !== "open") return;
      conn.write(
        writeResponse(200, "slow\n", { keepAlive: keepAlive && !draining, version: req.version }),
      );
      if (!keepAlive || draining) conn.close();
    }, 500);
    return null;
  }
  if (target === "/echo" && req.method === "POST") {
    return writeResponse(200, req.body, {
      contentType: "application/octet-stream",
      keepAlive,
      version: req.version,
    });
  }
  return writeResponse(404, "Not Found\n", { keepAlive, version: req.version });
}

function onData(data: Uint8Array, conn: Connection): void {
  const state = conn.context as HttpConn;
  const parser = state.parser;
  parser.feed(data);
  let used = 0;
  let close = false;
  try {
    for (let req = parser.next(); req !== null; req = parser.next()) {
      const res = route(req, conn, state);
      if (res !== null) {
        if (used + res.byteLength > scratch.byteLength) {
          const bigger = new Uint8Array(Math.max(scratch.byteLength * 2, used + res.byteLength));
          bigger.set(scratch.subarray(0, used));
          scratch = bigger;
        }
        scratch.set(res, used);
        used += res.byteLength;
      }
      if (!req.keepAlive || draining) {
        close = true;
        break;
      }
    }
  } catch (e) {
    if (!(e instanceof HttpParseError)) throw e;
    const res = errorResponse(e.status, `${e.status} ${e.reason}\n`);
    if (used > 0) conn.write(scratch.subarray(0, used));
    if (conn.state === "open") conn.write(res); // not when that write found the peer gone
    conn.close();
    return;
  }
  state.started = parser.idle ? -1 : (state.started < 0 ? reactor.now : state.started);
  if (used > 0) conn.write(scratch.subarray(0, used));
  if (close && state.pending === 0) conn.close();
}

function onConnection(conn: Connection): void {
  if (draining) {
    conn.close();
    return;
  }
  conn.context = { parser: new HttpParser(), started: -1, pending: 0 } satisfies HttpConn;
  conn.onData = onData;
  conn.onClose = () => {
    conns.delete(conn);
    if (draining && conns.size === 0) reactor.stop();
  };
  conns.add(conn);
}

let listener: Listener;
try {
  listener = Listener.listen(
    reactor,
    {
      host: args.host,
      port: args.port,
      reusePort: args.booleans.has("reuse-port"),
      connection: { idleTimeoutMs },
    },
    onConnection,
  );
} catch (e) {
  console.error((e as Error).message);
  reactor.close();
  Deno.exit(1);
}

// Started as root to bind a privileged port: drop to the configured
// user/group now that the socket is bound, before serving anything.
try {
  const gid = args.strings["group-id"]!, uid = args.strings["user-id"]!;
  if (gid !== "" || uid !== "") setgroups([]);
  if (gid !== "") setgid(Number(gid));
  if (uid !== "") setuid(Number(uid));
} catch (e) {
  console.error(`Cannot drop privileges: ${(e as Error).message}`);
  Deno.exit(1);
}

// Slowloris guard: a request whose head has not completed within the header
// timeout is answered 408 and closed. One sweep a second, O(connections).
if (headerTimeoutMs > 0) {
  reactor.setInterval(() => {
    const now = reactor.now;
    for (const conn of conns) {
      const state = conn.context as HttpConn;
      if (state.started >= 0 && now - state.started > headerTimeoutMs) {
        // A connection already closing (flushing its last responses) only closes.
        if (conn.state === "open") conn.write(errorResponse(408));
        conn.close();
      }
    }
  }, 1000);
}

function drain(): void {
  if (draining) return;
  draining = true;
  listener.close();
  for (const conn of conns) {
    const state = conn.context as HttpConn;
    if (state.parser.idle && state.pending === 0 && conn.writableLength === 0) conn.close();
  }
  if (conns.size === 0) reactor.stop();
  reactor.setTimeout(() => {
    for (const conn of conns) conn.abort();
    reactor.stop();
  }, drainMs);
}
reactor.addSignalListener("SIGTERM", drain);
reactor.addSignalListener("SIGINT", drain);

const addr = listener.address();
console.log(`listening on ${args.host}:${"port" in addr ? addr.port : args.port}`);
await reactor.run();
listener.close();
reactor.close();
