/**
 * Broadcast benchmark: one message published to N WebSocket subscribers
 * (default 10,000), on
 *
 * - `workers`: ffinet `serve({ workers: 2 })` (two threads of one process;
 *   a publish crosses to the other Worker through the main thread);
 * - `supervised`: ffinet's `Supervisor` with 2 worker processes on one
 *   shared socket (what `deno task serve` runs; a publish crosses to the
 *   other process through the supervisor's channel);
 * - `single`: ffinet `serve()` on one thread (no bus: the cost of the
 *   delivery itself);
 * - `bun`: `Bun.serve` with `server.publish` in one process.
 *
 * Each round one subscriber sends `pub:<round>`; the server publishes it
 * to topic "room", which every subscriber (the sender too) joined. The
 * client (raw sockets on an ffinet reactor in this process, so that the
 * client costs the same for every server) notes when the first and the
 * last subscriber got it, then starts the next round. Server CPU is
 * utime + stime from `/proc` of the server process and its descendants
 * (the supervisor and its workers), over all rounds, divided by the
 * messages delivered.
 *
 *     deno run -A bench/ws_broadcast.ts [--subscribers 10000] [--rounds 30] [--size 64]
 *                                       [--modes workers,supervised,bun]
 *                                       [--repeat 1] [--server-flags "--cpu-prof --cpu-prof-dir=DIR"]
 *
 * With `--repeat N` the modes run N times, interleaved (machines are
 * noisy): each pass prints its ratios to that pass's Bun run, and
 * the medians come last. Latency is from the publishing frame's write to
 * the first and to the last subscriber's receipt: p50 and p99 over rounds.
 *
 * `--server-flags` are given to every ffinet server process's `deno run`
 * (the supervisor's workers included), e.g. to profile them; with
 * `--server-log FILE` what the servers print goes to FILE; `--idle-ms MS`
 * first prints the servers' CPU over MS ms with every subscriber connected
 * and nothing published.
 *
 * @module
 */
import { parseArgs } from "../examples/_args.ts";
import { publish, serve, type WebSocketServer } from "../http/mod.ts";
import { readProcFile } from "../ffi/process.ts";
import { connect } from "../reactor/connect.ts";
import type { Connection } from "../reactor/connection.ts";
import { Reactor } from "../reactor/reactor.ts";
import { freePort } from "../tests/_helpers.ts";

const args = parseArgs(Deno.args, {
  usage: "ws_broadcast.ts [--subscribers N] [--rounds R] [--size BYTES] [--modes LIST]",
  defaults: { host: "127.0.0.1", port: 0 },
  strings: {
    subscribers: "10000",
    rounds: "30",
    size: "64",
    modes: "workers,supervised,bun",
    repeat: "1",
    role: "bench",
    "server-flags": "",
    "server-log": "",
    "idle-ms": "0",
  },
});
const HOST = args.host;
const num = (name: string): number => Number(args.strings[name]);
const SELF = new URL(import.meta.url).pathname;
const CLOCK_TICKS = 100;
const SERVER_FLAGS = (args.strings["server-flags"] ?? "").split(" ").filter((f) => f !== "");

// ---------------------------------------------------------------- servers

/** The ffinet app: every socket joins "room"; `pub:<x>` publishes `<x>` padded to `size`. */
function serveApp(port: number, workers: number): void {
  const pad = "x".repeat(Math.max(0, num("size") - 8));
  const server: WebSocketServer = serve<undefined>({
    hostname: HOST,
    port,
    workers,
    tcpBacklog: 4096,
    drainOnSignals: true, // SIGTERM ends the process normally (a --cpu-prof is written)
    onListen() {
      console.log("listening");
    },
    websocket: {
      idleTimeout: 0,
      open(ws) {
        ws.subscribe("room");
      },
      message(_ws, m) {
        if (typeof m === "string" && m.startsWith("pub:")) publish("room", `${m.slice(4)}:${pad}`);
      },
    },
    handler(req) {
      if (server.upgrade(req)) return;
      return new Response("not a WebSocket request", { status: 400 });
    },
  });
}

async function superviseApp(port: number): Promise<void> {
  const { Supervisor } = await import("../daemon/supervisor/supervisor.ts");
  const sup = new Supervisor({
    app: SELF,
    appArgs: ["--role", "app", "--size", String(num("size"))],
    workers: 2,
    listen: { host: HOST, port, backlog: 4096 },
    handleSignals: true,
    startTimeoutMs: 60_000,
    ...(SERVER_FLAGS.length > 0 ? { denoFlags: ["-A", ...SERVER_FLAGS] } : {}),
  });
  await sup.start();
  console.log("listening");
  await sup.finished;
}

const BUN_APP = `
const port = Number(process.argv[2]);
const pad = "x".repeat(Math.max(0, Number(process.argv[3]) - 8));
const server = Bun.serve({
  hostname: ${JSON.stringify(HOST)},
  port,
  fetch(req, server) {
    if (server.upgrade(req)) return;
    return new Response("not a WebSocket request", { status: 400 });
  },
  websocket: {
    idleTimeout: 0,
    open(ws) { ws.subscribe("room"); },
    message(ws, m) {
      const t = String(m);
      if (t.startsWith("pub:")) server.publish("room", t.slice(4) + ":" + pad);
    },
  },
});
console.log("listening");
`;

// ---------------------------------------------------------------- client

const enc = new TextEncoder();
const HANDSHAKE = enc.encode(
  `GET / HTTP/1.1\r\nHost: ${HOST}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
);

/** A masked client text frame (payload < 126 bytes). */
function textFrame(text: string): Uint8Array {
  const p = enc.encode(text);
  const out = new Uint8Array(6 + p.byteLength);
  out[0] = 0x81;
  out[1] = 0x80 | p.byteLength;
  out.set([1, 2, 3, 4], 2);
  for (let i = 0; i < p.byteLength; i++) out[6 + i] = p[i]! ^ (i % 4 + 1);
  return out;
}

/** The state of one broadcast round. */
interface Round {
  got: number;
  first: number;
  last: number;
  done: PromiseWithResolvers<void>;
}

let round: Round | null = null;
let subscribers = 0;

/** One subscriber: the handshake, then data frames counted (server frames are unmasked). */
function subscribe(conn: Connection): Promise<void> {
  const upgraded = Promise.withResolvers<void>();
  let head = "";
  let open = false;
  let buf = new Uint8Array(0);
  conn.onData = (data) => {
    if (!open) {
      head += new TextDecoder().decode(data);
      const end = head.indexOf("\r\n\r\n");
      if (end < 0) return;
      if (!head.startsWith("HTTP/1.1 101")) {
        upgraded.reject(new Error(`not upgraded: ${head.split("\r\n")[0]}`));
        return;
      }
      open = true;
      upgraded.resolve();
      const rest = enc.encode(head).subarray(end + 4); // ASCII head: same offsets
      if (rest.byteLength === 0) return;
      data = rest;
    }
    const all = buf.byteLength === 0 ? data : concat(buf, data);
    let off = 0;
    while (all.byteLength - off >= 2) {
      const op = all[off]! & 0x0f;
      let len = all[off + 1]! & 0x7f;
      let hdr = 2;
      if (len === 126) {
        if (all.byteLength - off < 4) break;
        len = all[off + 2]! << 8 | all[off + 3]!;
        hdr = 4;
      } else if (len === 127) {
        if (all.byteLength - off < 10) break;
        len = Number(new DataView(all.buffer, all.byteOffset + off + 2, 8).getBigUint64(0));
        hdr = 10;
      }
      if (all.byteLength - off < hdr + len) break;
      off += hdr + len;
      if ((op === 1 || op === 2) && round !== null) {
        const now = performance.now();
        if (round.got++ === 0) round.first = now;
        if (round.got === subscribers) {
          round.last = now;
          round.done.resolve();
        }
      }
    }
    buf = off === all.byteLength ? new Uint8Array(0) : all.slice(off);
  };
  return upgraded.promise;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.byteLength + b.byteLength);
  out.set(a);
  out.set(b, a.byteLength);
  return out;
}

/** utime + stime (ticks) of `pid` and all its descendants. */
function treeTicks(pid: number): number {
  let total = 0;
  const stack = [pid];
  while (stack.length > 0) {
    const p = stack.pop()!;
    try {
      const stat = readProcFile(`/proc/${p}/stat`);
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      total += Number(f[11]) + Number(f[12]);
      for (const tid of Deno.readDirSync(`/proc/${p}/task`)) {
        const kids = readProcFile(`/proc/${p}/task/${tid.name}/children`).trim();
        if (kids !== "") stack.push(...kids.split(" ").map(Number));
      }
    } catch { /* gone */ }
  }
  return total;
}

interface Result {
  mode: string;
  cpuUsPerDelivery: number;
  firstMs: number;
  lastMs: number;
  lastP99Ms: number;
  lost: number;
}

/** The `q` quantile (0..1) of `xs`, nearest rank. */
function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)] ?? NaN;
}

function median(xs: number[]): number {
  return quantile(xs, 0.5);
}

async function runMode(mode: string, reactor: Reactor): Promise<Result> {
  const port = freePort();
  const size = String(num("size"));
  let cmd: Deno.Command;
  let tmp: string | undefined;
  if (mode === "bun") {
    tmp = await Deno.makeTempDir({ prefix: "ffinet-bench-" });
    await Deno.writeTextFile(`${tmp}/server.js`, BUN_APP);
    cmd = new Deno.Command("bun", {
      args: ["run", `${tmp}/server.js`, String(port), size],
      stdout: "piped",
    });
  } else {
    const role = mode === "single" ? "app" : mode === "workers" ? "workers" : "supervisor";
    cmd = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        ...(mode === "supervised" ? [] : SERVER_FLAGS),
        SELF,
        "--role",
        role,
        "--port",
        String(port),
        "--size",
        size,
      ],
      stdout: "piped",
    });
  }
  const child = cmd.spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  const wanted = mode === "workers" ? 2 : 1;
  while ((out.match(/listening/g) ?? []).length < wanted) {
    const { value, done } = await lines.read();
    if (done) throw new Error(`${mode}: the server exited`);
    out += value;
  }
  const log = args.strings["server-log"] ?? "";
  const draining = (async () => {
    for (;;) {
      const { value, done } = await lines.read();
      if (done) break;
      if (log !== "") await Deno.writeTextFile(log, value, { append: true });
    }
  })();
  const conns: Connection[] = [];
  const n = num("subscribers");
  subscribers = n;
  try {
    for (let i = 0; i < n; i += 250) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(250, n - i) }, async () => {
          const c = await connect(reactor, { host: HOST, port }, { timeoutMs: 30_000 });
          const up = subscribe(c);
          c.write(HANDSHAKE);
          await up;
          return c;
        }),
      );
      conns.push(...batch);
    }
    await new Promise((r) => setTimeout(r, 500)); // every subscribe() has run
    const idleMs = num("idle-ms");
    if (idleMs > 0) {
      // What the server costs with every subscriber connected and nothing published.
      const i0 = treeTicks(child.pid);
      await new Promise((r) => setTimeout(r, idleMs));
      const idle = (treeTicks(child.pid) - i0) * (1000 / CLOCK_TICKS) / idleMs;
      console.log(`${mode}: idle with ${n} subscribers: ${(idle * 100).toFixed(1)} % of a core`);
    }
    const rounds = num("rounds");
    const first: number[] = [];
    const last: number[] = [];
    let lost = 0;
    const t0 = treeTicks(child.pid);
    for (let r = 0; r < rounds; r++) {
      round = { got: 0, first: 0, last: 0, done: Promise.withResolvers<void>() };
      const sent = performance.now();
      conns[(r * 7919) % n]!.write(textFrame(`pub:${r}`));
      const timer = setTimeout(() => round!.done.resolve(), 10_000);
      await round.done.promise;
      clearTimeout(timer);
      if (round.got < n) lost += n - round.got;
      else {
        first.push(round.first - sent);
        last.push(round.last - sent);
      }
    }
    const ticks = treeTicks(child.pid) - t0;
    round = null;
    return {
      mode,
      cpuUsPerDelivery: ticks * (1e6 / CLOCK_TICKS) / (rounds * n - lost),
      firstMs: median(first),
      lastMs: median(last),
      lastP99Ms: quantile(last, 0.99),
      lost,
    };
  } finally {
    for (const c of conns) c.close();
    child.kill("SIGTERM");
    await child.status;
    await draining;
    if (tmp !== undefined) await Deno.remove(tmp, { recursive: true });
  }
}

if (args.strings.role === "app") serveApp(args.port, 1);
else if (args.strings.role === "workers") serveApp(args.port, 2);
else if (args.strings.role === "supervisor") await superviseApp(args.port);
else {
  const reactor = new Reactor();
  const running = reactor.run();
  const modes = (args.strings.modes ?? "").split(",");
  const ratios = new Map<string, { cpu: number[]; last: number[] }>();
  for (let rep = 0; rep < num("repeat"); rep++) {
    const results: Result[] = [];
    for (const mode of modes) {
      const load = readProcFile("/proc/loadavg").split(" ").slice(0, 3).join(" ");
      try {
        results.push(await runMode(mode, reactor));
        const r = results.at(-1)!;
        console.log(
          `${mode.padEnd(11)} ${r.cpuUsPerDelivery.toFixed(3)} µs server CPU per delivery; ` +
            `latency first p50 ${r.firstMs.toFixed(2)} ms, last p50 ${r.lastMs.toFixed(2)} ms ` +
            `p99 ${r.lastP99Ms.toFixed(2)} ms (load ${load})` +
            (r.lost > 0 ? `; ${r.lost} deliveries missing` : ""),
        );
      } catch (e) {
        console.log(`${mode}: ${(e as Error).message}`);
      }
    }
    const bun = results.find((r) => r.mode === "bun");
    if (bun === undefined) continue;
    for (const r of results) {
      if (r === bun) continue;
      const cpu = r.cpuUsPerDelivery / bun.cpuUsPerDelivery;
      const last = r.lastMs / bun.lastMs;
      console.log(
        `${r.mode} / bun: CPU per delivery ${cpu.toFixed(2)}x, ` +
          `last-subscriber latency ${last.toFixed(2)}x`,
      );
      const m = ratios.get(r.mode) ?? { cpu: [], last: [] };
      m.cpu.push(cpu);
      m.last.push(last);
      ratios.set(r.mode, m);
    }
  }
  if (num("repeat") > 1) {
    for (const [mode, m] of ratios) {
      console.log(
        `median over ${m.cpu.length} runs: ${mode} / bun CPU per delivery ` +
          `${median(m.cpu).toFixed(2)}x (${m.cpu.map((x) => x.toFixed(2)).join(", ")}), ` +
          `last-subscriber latency ${median(m.last).toFixed(2)}x`,
      );
    }
  }
  reactor.stop();
  await running;
  reactor.close();
}
