/**
 * The reactor examples, run as real programs: each prints
 * `listening on HOST:PORT`, serves on loopback, and stops by itself or on
 * SIGTERM.
 */
import { assert, assertEquals, assertMatch, assertStringIncludes } from "@std/assert";
import { withFdCheck } from "../_helpers.ts";

const EXAMPLES = new URL("../../examples/", import.meta.url);

/** A running example. */
interface Running {
  child: Deno.ChildProcess;
  /** Resolves with the port from the `listening on` line. */
  port: Promise<number>;
  /** Resolves with all of stdout and stderr once the program exits. */
  output: Promise<{ code: number; signal: Deno.Signal | null; stdout: string; stderr: string }>;
}

function start(file: string, args: string[]): Running {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-ffi",
      "--allow-read",
      "--allow-net",
      new URL(file, EXAMPLES).pathname,
      ...args,
    ],
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).spawn();
  let stdout = "";
  let onPort!: (port: number) => void, noPort!: (e: Error) => void;
  const port = new Promise<number>((resolve, reject) => {
    onPort = resolve;
    noPort = reject;
  });
  port.catch(() => {}); // only an error for callers that wait for the port
  const readOut = (async () => {
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
      stdout += chunk;
      const m = stdout.match(/^listening on (\S+):(\d+)$/m);
      if (m) onPort(Number(m[2]));
    }
  })();
  const readErr = new Response(child.stderr).text();
  const output = (async () => {
    const [status, , stderr] = await Promise.all([child.status, readOut, readErr]);
    noPort(new Error(`${file} exited without listening:\n${stdout}\n${stderr}`));
    return { code: status.code, signal: status.signal, stdout, stderr };
  })();
  return { child, port, output };
}

/** Connect, send `msg`, read back as many bytes, close. */
async function echo(port: number, msg: string): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const data = new TextEncoder().encode(msg);
    const writing = (async () => {
      for (let off = 0; off < data.byteLength;) off += await conn.write(data.subarray(off));
    })();
    const got = new Uint8Array(data.byteLength);
    let n = 0;
    while (n < got.byteLength) {
      const r = await conn.read(got.subarray(n));
      if (r === null) break;
      n += r;
    }
    await writing;
    return new TextDecoder().decode(got.subarray(0, n));
  } finally {
    conn.close();
  }
}

/** Stop a server example with `signal` and return its output; fails after 10 s. */
async function stop(run: Running, signal: Deno.Signal = "SIGTERM") {
  run.child.kill(signal);
  const timer = setTimeout(() => run.child.kill("SIGKILL"), 10_000);
  try {
    return await run.output;
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("raw_epoll.ts: echoes (also 1 MiB, through EPOLLOUT backpressure) and stops on SIGTERM", () =>
  withFdCheck(async () => {
    const run = start("raw_epoll.ts", ["--port", "0"]);
    const port = await run.port;
    assertEquals(await echo(port, "hello\n"), "hello\n");
    const big = "0123456789abcdef".repeat(64 * 1024);
    assertEquals(await echo(port, big), big);
    const many = await Promise.all(Array.from({ length: 20 }, (_, i) => echo(port, `client ${i}`)));
    assertEquals(many, Array.from({ length: 20 }, (_, i) => `client ${i}`));
    const out = await stop(run);
    assertEquals(out.code, 0, out.stderr);
    assertMatch(out.stdout, /^listening on 127\.0\.0\.1:\d+\n/);
    assertStringIncludes(out.stdout, "stopped after 22 connections");
  }));

Deno.test("raw_epoll.ts: SIGINT stops it too", () =>
  withFdCheck(async () => {
    const run = start("raw_epoll.ts", ["--port=0", "--host", "127.0.0.1"]);
    await run.port;
    const out = await stop(run, "SIGINT");
    assertEquals(out.code, 0, out.stderr);
    assertStringIncludes(out.stdout, "stopped after 0 connections");
  }));

Deno.test("the examples' flags: --help exits 0, an unknown flag or a bad port exits 2", () =>
  withFdCheck(async () => {
    const help = await start("raw_epoll.ts", ["--help"]).output;
    assertEquals(help.code, 0);
    assertStringIncludes(help.stdout, "usage: raw_epoll.ts");
    const unknown = await start("raw_epoll.ts", ["--bogus"]).output;
    assertEquals(unknown.code, 2);
    assertStringIncludes(unknown.stderr, "unknown flag --bogus");
    const badPort = await start("oneshot_workers.ts", ["--port", "70000"]).output;
    assertEquals(badPort.code, 2);
    assertStringIncludes(badPort.stderr, "is not a port");
    const badCount = await start("thundering_herd.ts", ["--workers", "zero"]).output;
    assertEquals(badCount.code, 2);
    assertStringIncludes(badCount.stderr, "--workers zero");
  }));

Deno.test("oneshot_workers.ts: clients faster than the workers; no connection handled by two at once", () =>
  withFdCheck(async () => {
    const run = start("oneshot_workers.ts", [
      "--port=0",
      "--workers=3",
      "--clients=6",
      "--messages=6",
      "--work-ms=3",
    ]);
    const timer = setTimeout(() => run.child.kill("SIGKILL"), 30_000);
    const out = await run.output;
    clearTimeout(timer);
    assertEquals(out.code, 0, out.stdout + out.stderr);
    assertMatch(out.stdout, /^listening on 127\.0\.0\.1:\d+\n/);
    assertMatch(out.stdout, /worker \d: fd \d+ readable, \d+ bytes echoed, re-armed/);
    assertStringIncludes(
      out.stdout,
      "no connection was handled by two workers at once (0 overlaps",
    );
    assertStringIncludes(out.stdout, "clients: every echo was correct");
  }));

Deno.test("thundering_herd.ts: exclusive and reuseport wake about one worker per connection", () =>
  withFdCheck(async () => {
    const run = start("thundering_herd.ts", ["--workers=3", "--connections=20", "--gap-ms=3"]);
    const timer = setTimeout(() => run.child.kill("SIGKILL"), 30_000);
    const out = await run.output;
    clearTimeout(timer);
    assertEquals(out.code, 0, out.stdout + out.stderr);
    const perConnection = (mode: string) => {
      const m = out.stdout.match(
        new RegExp(`^${mode}\\s+(\\d+)\\s+([\\d.]+)\\s+(\\d+)\\s+(\\d+)`, "m"),
      );
      if (m === null) throw new Error(`no ${mode} line in:\n${out.stdout}`);
      assertEquals(Number(m[4]), 20, `${mode}: every connection accepted`);
      return Number(m[2]);
    };
    const plain = perConnection("plain");
    assert(plain >= 1, `plain: ${plain}`);
    // EXCLUSIVE may wake more than one waiter, rarely; REUSEPORT wakes only the owner.
    assert(perConnection("exclusive") < 1.5, out.stdout);
    assert(perConnection("reuseport") < 1.5, out.stdout);
  }));

Deno.test("reuseport_workers.ts: N Workers with a Reactor each serve one port until SIGTERM", () =>
  withFdCheck(async () => {
    const run = start("reuseport_workers.ts", ["--port", "0", "--workers", "2"]);
    const port = await run.port;
    const replies = await Promise.all(Array.from({ length: 40 }, (_, i) => echo(port, `req ${i}`)));
    assertEquals(replies, Array.from({ length: 40 }, (_, i) => `req ${i}`));
    const out = await stop(run);
    assertEquals(out.code, 0, out.stderr);
    const served = [...out.stdout.matchAll(/^worker \d: (\d+) connections/gm)].map((m) =>
      Number(m[1])
    );
    assertEquals(served.length, 2, out.stdout);
    assertEquals(served.reduce((a, b) => a + b, 0), 40);
  }));
