/**
 * Handshake floods against an HTTPS `serve()` in its own process (its RSS
 * and CPU read from /proc/<pid>/stat):
 *
 * - 10,000 half-open handshakes (nothing sent, or a ClientHello cut short)
 *   held at once: the server's RSS grows by a bounded amount per
 *   connection, a normal HTTPS client is served meanwhile, and the
 *   handshake timeout closes every one of them.
 * - Fairness: several clients looping on new full handshakes must not
 *   stall established keep-alive connections: their p99 latency with and
 *   without the flood is measured and bounded.
 *
 * @module
 */
import { assert, assertEquals } from "@std/assert";
import { getrlimit } from "../../ffi/process.ts";
import { RLIMIT } from "../../ffi/constants.ts";
import { runBounded, sleep, waitFor } from "../_helpers.ts";
import { hasCommand, makePki } from "./_certs.ts";
import { startChildServer } from "./_child_server.ts";

const TEST = { sanitizeOps: true, sanitizeResources: true };

/** A child process whose stdout is read line by line (and, if asked, fed on stdin). */
class LineProcess {
  readonly lines: string[] = [];
  readonly #child: Deno.ChildProcess;
  readonly #reading: Promise<void>;
  readonly #status: Promise<Deno.CommandStatus>;
  readonly #stdin: WritableStreamDefaultWriter<Uint8Array> | undefined;
  #exited = false;

  constructor(cmd: string, args: string[], { stdin = false } = {}) {
    const child = new Deno.Command(cmd, {
      args,
      stdin: stdin ? "piped" : "null",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    this.#child = child;
    this.#stdin = stdin ? child.stdin.getWriter() : undefined;
    this.#status = child.status.then((s) => {
      this.#exited = true;
      return s;
    });
    this.#reading = (async () => {
      let rest = "";
      for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
        const parts = (rest + chunk).split("\n");
        rest = parts.pop()!;
        this.lines.push(...parts);
      }
    })();
  }

  get exited(): boolean {
    return this.#exited;
  }

  /** The `nth` (from 0) line starting with `prefix`, waiting up to `ms`. */
  async line(prefix: string, ms: number, nth = 0): Promise<string> {
    const matching = () => this.lines.filter((l) => l.startsWith(prefix));
    await waitFor(
      () => this.#exited || matching().length > nth,
      ms,
      `"${prefix}" from the client`,
    );
    const found = matching()[nth];
    if (found === undefined) {
      throw new Error(`the client exited without "${prefix}": ${this.lines.join(" | ")}`);
    }
    return found;
  }

  /** Write `text` to the child's stdin. */
  async send(text: string): Promise<void> {
    await this.#stdin!.write(new TextEncoder().encode(text));
  }

  async stop(): Promise<void> {
    if (!this.#exited) {
      try {
        this.#child.kill("SIGKILL");
      } catch { /* exited */ }
    }
    await this.#stdin?.close().catch(() => {});
    await this.#status;
    await this.#reading;
  }
}

/** The accept queue of the listener on `port` (Recv-Q of `ss -ltn`). */
async function acceptQueue(port: number): Promise<number> {
  const out = await runBounded("ss", { args: ["-Hltn", `sport = :${port}`] }, 10_000);
  return Number(out.stdout.trim().split(/\s+/)[1] ?? NaN);
}

const HALF_OPEN = 10_000;
/**
 * Longer than opening 10,000 takes (6-8 s on a 2-core machine at load 4),
 * so that at least half are held at once (the test checks that: opening
 * may take up to twice this), and the held RSS can be read before the
 * first ones opened are reaped.
 */
const HANDSHAKE_MS = 12_000;

Deno.test(
  "flood: 10,000 half-open handshakes: RSS bounded per connection, a real client served, every one reaped by the handshake timeout",
  TEST,
  async () => {
    for (const tool of ["python3", "curl", "ss"]) {
      if (!await hasCommand(tool)) {
        console.log(`skip: half-open flood: ${tool} is not installed`);
        return;
      }
    }
    // The server holds 10,000 sockets, and so does the client.
    const need = HALF_OPEN + 500;
    const { hard } = getrlimit(RLIMIT.NOFILE);
    if (hard < need) {
      console.log(`skip: half-open flood: the fd hard limit ${hard} is below ${need}`);
      return;
    }
    const pki = await makePki();
    const server = await startChildServer(
      pki,
      { FFINET_HANDSHAKE_MS: String(HANDSHAKE_MS) },
      { shell: `ulimit -n ${need} &&` },
    );
    let flood: LineProcess | undefined;
    try {
      const get = (timeoutMs = 20_000) =>
        runBounded("curl", {
          args: [
            "-sS",
            "--max-time",
            String(timeoutMs / 1000),
            "--cacert",
            pki.caPath,
            `https://localhost:${server.port}/`,
          ],
        }, timeoutMs + 5000);
      // Warm up: the first handshakes load libssl's tables and compile the paths
      // (20 requests, 4 at a time).
      await Promise.all(Array.from({ length: 4 }, async () => {
        for (let i = 0; i < 5; i++) assertEquals((await get()).stdout, "ok");
      }));
      const rssBefore = server.rssKiB();
      const started = performance.now();
      flood = new LineProcess("python3", [
        new URL("./_half_open.py", import.meta.url).pathname,
        String(server.port),
        String(HALF_OPEN),
        String(HANDSHAKE_MS / 1000 + 45),
      ]);
      const [, , early] = (await flood.line("open ", 120_000)).split(" ");
      const openedMs = performance.now() - started;
      const held = HALF_OPEN - Number(early);
      await waitFor(async () => await acceptQueue(server.port) === 0, 30_000, "the accept queue");
      // The server may still be reading the cut-short ClientHellos: take its RSS once it
      // settles (two readings 250 ms apart within 512 KiB; 5 s at most, and no later than
      // 1 s before the first ones opened can be reaped).
      let rssHeld = server.rssKiB();
      for (let i = 0; i < 20 && performance.now() - started < HANDSHAKE_MS - 1000; i++) {
        await sleep(250);
        const now = server.rssKiB();
        const settled = Math.abs(now - rssHeld) < 512;
        rssHeld = now;
        if (settled) break;
      }
      const rssReadMs = performance.now() - started;
      const perConn = (rssHeld - rssBefore) * 1024 / held;
      // A normal client is served while the 10,000 are held.
      const servedAt = performance.now();
      const res = await get();
      const servedMs = performance.now() - servedAt;
      assertEquals(res.stdout, "ok", `curl during the flood: ${res.stderr}`);
      const rssServed = server.rssKiB();
      const reaped = await flood.line("reaped ", HANDSHAKE_MS + 60_000);
      const [, n, seconds] = reaped.split(" ");
      const rssAfter = server.rssKiB();
      console.log(
        `10,000 half-open: opened in ${(openedMs / 1000).toFixed(1)} s, held RSS read at ` +
          `${(rssReadMs / 1000).toFixed(1)} s; server RSS ` +
          `${(rssBefore / 1024).toFixed(1)} MiB -> ${(rssHeld / 1024).toFixed(1)} MiB held ` +
          `with ${held} held (${perConn.toFixed(0)} B per connection) -> ${
            (rssAfter / 1024).toFixed(1)
          } MiB after; ` +
          `a curl request meanwhile took ${servedMs.toFixed(0)} ms; ${n} reaped ${seconds} s ` +
          `after the last opened (handshakeTimeoutMs ${HANDSHAKE_MS})`,
      );
      assert(held >= HALF_OPEN / 2, `only ${held} were held at once`);
      // Bounded memory. Measured: about 31 KB per connection; a 64 KiB buffer taken per
      // connection would fail this bound.
      assert(perConn < 48 * 1024, `${perConn.toFixed(0)} bytes of RSS per half-open handshake`);
      assert(rssServed - rssHeld < 16 * 1024, "serving one request grew the RSS by 16 MiB");
      assertEquals(Number(n), HALF_OPEN, `only ${n} of ${HALF_OPEN} half-open handshakes reaped`);
      // Reaped by the handshake timer: the last one opened right before "open", and its
      // timer ran from its accept; so not before handshakeTimeoutMs, nor long after.
      assert(Number(seconds) <= HANDSHAKE_MS / 1000 + 30, `reaped after ${seconds} s`);
      assert(Number(seconds) >= HANDSHAKE_MS / 1000 - 2, `reaped early: ${seconds} s`);
      // The server still serves.
      assertEquals((await get()).stdout, "ok");
    } finally {
      await flood?.stop();
      await server.stop();
      await pki.remove();
    }
  },
);

/** Latency percentiles of keep-alive requests, in milliseconds. */
interface Latency {
  n: number;
  p50: number;
  p99: number;
  max: number;
}

/**
 * Node: `conns` keep-alive TLS connections, established first; then each
 * sends one request at a time for `warmMs` unmeasured, then for `ms`, and
 * a line of the request latency percentiles in that window is printed;
 * then, once a line comes on stdin, another window of `ms` is measured
 * and printed the same way, and the client exits.
 */
function latencyClient(
  port: number,
  caPath: string,
  conns: number,
  ms: number,
  warmMs: number,
): string {
  return `
    const tls = require("node:tls");
    const ca = require("node:fs").readFileSync(${JSON.stringify(caPath)});
    let lat = [], stopAt = 0, parked = 0, windowDone = () => {};
    const loops = [];
    function conn() {
      const s = tls.connect({ host: "127.0.0.1", port: ${port}, ca, servername: "localhost" });
      let buf = "", sent = 0;
      const next = () => {
        if (Date.now() >= stopAt) { if (++parked === ${conns}) windowDone(); return; }
        sent = performance.now();
        s.write("GET / HTTP/1.1\\r\\nhost: localhost\\r\\n\\r\\n");
      };
      s.on("data", (d) => {
        buf += d;
        const i = buf.indexOf("\\r\\n\\r\\nok");
        if (i < 0) return;
        buf = buf.slice(i + 6);
        lat.push(performance.now() - sent);
        next();
      });
      s.on("secureConnect", () => {
        loops.push(next);
        if (loops.length === ${conns}) main();
      });
      s.on("error", (e) => { console.error(e.message); process.exit(1); });
    }
    /** Every connection loops on requests for ms; resolves the window's percentiles. */
    function measure(ms) {
      return new Promise((resolve) => {
        lat = [];
        parked = 0;
        windowDone = () => {
          lat.sort((a, b) => a - b);
          const q = (p) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))];
          resolve(JSON.stringify({ n: lat.length, p50: q(0.5), p99: q(0.99), max: lat[lat.length - 1] }));
        };
        stopAt = Date.now() + ms;
        for (const n of loops) n();
      });
    }
    async function main() {
      await measure(${warmMs});
      console.log(await measure(${ms}));
      await new Promise((r) => process.stdin.once("data", r));
      console.log(await measure(${ms}));
      process.exit(0);
    }
    for (let i = 0; i < ${conns}; i++) conn();`;
}

const FLOODERS = 4;
const WINDOW_MS = 2000;
/** The unmeasured first window: it only warms the server up (JIT, libssl's tables). */
const WARM_UP_MS = 500;

/** Keep-alive latency on the server at `port`, quiet and then under a handshake flood. */
interface Fairness {
  quiet: Latency;
  flooded: Latency;
  /** Full handshakes the flooding clients completed. */
  handshakes: number;
}

async function fairness(port: number, caPath: string): Promise<Fairness> {
  // One client: it warms the server up, measures it quiet, then (told on stdin) flooded,
  // on the same established connections.
  const client = new LineProcess("node", [
    "-e",
    latencyClient(port, caPath, 4, WINDOW_MS, WARM_UP_MS),
  ], { stdin: true });
  const flooders: Deno.ChildProcess[] = [];
  try {
    const quiet: Latency = JSON.parse(await client.line("{", 60_000));
    for (let i = 0; i < FLOODERS; i++) {
      flooders.push(
        new Deno.Command("openssl", {
          args: [
            "s_time",
            "-connect",
            `127.0.0.1:${port}`,
            "-new",
            "-time",
            // The flood runs from before the measured window (500 ms) until past its end.
            String(WINDOW_MS / 1000 + 2),
          ],
          stdin: "null",
          stdout: "piped",
          stderr: "piped",
        }).spawn(),
      );
    }
    await sleep(500);
    await client.send("go\n");
    const flooded: Latency = JSON.parse(await client.line("{", WINDOW_MS + 60_000, 1));
    const outs = await Promise.all(flooders.map((f) => f.output()));
    flooders.length = 0;
    const handshakes = outs.reduce((sum, o) => {
      const m = /(\d+) connections in [\d.]+s/.exec(new TextDecoder().decode(o.stdout));
      return sum + Number(m?.[1] ?? 0);
    }, 0);
    return { quiet, flooded, handshakes };
  } finally {
    for (const f of flooders) {
      try {
        f.kill("SIGKILL");
      } catch { /* exited */ }
      await f.output();
    }
    await client.stop();
  }
}

function describe(name: string, r: Fairness): string {
  return `${name}: keep-alive p99 ${r.quiet.p99.toFixed(2)} ms quiet (p50 ${
    r.quiet.p50.toFixed(2)
  }, ${r.quiet.n} requests) -> ${r.flooded.p99.toFixed(2)} ms under a flood of ${r.handshakes} ` +
    `full handshakes from ${FLOODERS} clients (p50 ${r.flooded.p50.toFixed(2)}, max ${
      r.flooded.max.toFixed(1)
    }, ${r.flooded.n} requests): +${(r.flooded.p99 - r.quiet.p99).toFixed(2)} ms`;
}

Deno.test(
  "flood: new full handshakes from 4 clients add little to the p99 latency of established keep-alive connections (Deno.serve measured alike)",
  TEST,
  async () => {
    for (const tool of ["node", "openssl"]) {
      if (!await hasCommand(tool)) {
        console.log(`skip: fairness: ${tool} is not installed`);
        return;
      }
    }
    const pki = await makePki();
    const server = await startChildServer(pki);
    const ac = new AbortController();
    const deno = Deno.serve({
      hostname: "127.0.0.1",
      port: 0,
      cert: pki.cert,
      key: pki.key,
      signal: ac.signal,
      onListen() {},
    }, () => new Response("ok"));
    try {
      const cpuBefore = server.cpuMs();
      const ours = await fairness(server.port, pki.caPath);
      const cpuMs = server.cpuMs() - cpuBefore;
      const theirs = await fairness((deno.addr as Deno.NetAddr).port, pki.caPath);
      console.log(
        `${describe("serve()", ours)} (target <= 5 ms); server CPU over both phases ${cpuMs} ms`,
      );
      console.log(describe("Deno.serve", theirs));
      const added = ours.flooded.p99 - ours.quiet.p99;
      assert(ours.handshakes > 0 && theirs.handshakes > 0, "the floods made handshakes");
      assert(ours.flooded.n > 0 && ours.quiet.n > 0, "requests went through");
      // Generous for a loaded 2-core machine: the flooding clients, the measuring client and
      // the server share 2 cores with everything else, and a request waits behind the
      // handshakes its reactor runs first (1.2-1.5 ms of CPU each, more in wall time when the
      // CPU is shared; Deno.serve's p99 grows by about 90 ms alike). The target is 5 ms; the
      // printed figures are the measurement. A reactor that stalls for a whole handshake
      // flood (or for a blocking step) fails this.
      assert(added < 500, `the flood added ${added.toFixed(1)} ms to the p99 latency`);
      assert(
        ours.flooded.p50 < 250,
        `the flood made the median request take ${ours.flooded.p50} ms`,
      );
    } finally {
      ac.abort();
      await deno.finished;
      await server.stop();
      await pki.remove();
    }
  },
);
