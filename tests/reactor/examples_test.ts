/**
 * The examples, run as real programs with exactly the flags of the run line
 * in their header comment (the line the README repeats): each prints
 * `listening on HOST:PORT` (or its socket path), serves on loopback, and
 * stops by itself or on SIGTERM. A permission missing from a documented run
 * line fails here.
 */
import { assert, assertEquals, assertMatch, assertStringIncludes } from "@std/assert";
import { ipAddress } from "../../ffi/sockaddr.ts";
import { DatagramSocket, Reactor } from "../../reactor/mod.ts";
import { exampleRunLine } from "../_example_server.ts";
import { withFdCheck } from "../_helpers.ts";

const EXAMPLES = new URL("../../examples/", import.meta.url);
const README = new URL("../../README.md", import.meta.url);

/** Every runnable example (files starting with `_` are their modules). */
const ALL_EXAMPLES = [...Deno.readDirSync(EXAMPLES)]
  .filter((e) => e.isFile && e.name.endsWith(".ts") && !e.name.startsWith("_"))
  .map((e) => e.name)
  .sort();

/** A running example. */
interface Running {
  child: Deno.ChildProcess;
  /** Resolves with the port from the `listening on` line. */
  port: Promise<number>;
  /** Resolves with all of stdout and stderr once the program exits. */
  output: Promise<{ code: number; signal: Deno.Signal | null; stdout: string; stderr: string }>;
}

/** Run `examples/<file>` with the flags of its run line (`flags` overrides them). */
function start(file: string, args: string[], flags = exampleRunLine(file).flags): Running {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...flags, new URL(file, EXAMPLES).pathname, ...args],
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
      const m = stdout.match(/^listening on (\S+?)(?::(\d+))?$/m);
      if (m) onPort(Number(m[2] ?? 0));
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

Deno.test("every example has one run line in its header, and the README gives exactly that line", () => {
  assert(ALL_EXAMPLES.length >= 12, ALL_EXAMPLES.join(" ")); // never vacuous
  const readme = Deno.readTextFileSync(README);
  for (const name of ALL_EXAMPLES) {
    const run = exampleRunLine(name);
    assert(run.flags.includes("--allow-ffi"), `${name}: ${run.line}`);
    for (const flag of run.flags) assertMatch(flag, /^--allow-[a-z]+$/, `${name}: ${run.line}`);
    assert(readme.includes(`\n${run.line}\n`), `README lacks the run line of ${name}: ${run.line}`);
  }
  // The README names no other run line for an example.
  const documented = [...readme.matchAll(/^deno run .* examples\/(\w+\.ts)\b.*$/gm)];
  for (const [line, name] of documented) {
    assertEquals(line, exampleRunLine(name!).line, `README: ${line}`);
  }
});

Deno.test("echo_server.ts and chat_server.ts: serve with their run lines, exit 0 on SIGTERM", () =>
  withFdCheck(async () => {
    const server = start("echo_server.ts", ["--port", "0"]);
    assertEquals(await echo(await server.port, "ping\n"), "ping\n");
    const echoOut = await stop(server);
    assertEquals(echoOut.code, 0, echoOut.stderr);

    const chat = start("chat_server.ts", ["--port", "0"]);
    const port = await chat.port;
    const a = await Deno.connect({ hostname: "127.0.0.1", port });
    const b = await Deno.connect({ hostname: "127.0.0.1", port });
    // The kernel queues a before b and the server accepts in that order, so a
    // is a member when b's line arrives; a gets it with b's address in front.
    const timer = setTimeout(() => a.close(), 10_000);
    try {
      await b.write(new TextEncoder().encode("hello\n"));
      const got = new Uint8Array(256);
      let text = "";
      while (!text.includes("hello\n")) {
        const n = await a.read(got);
        if (n === null) break;
        text += new TextDecoder().decode(got.subarray(0, n));
      }
      assertMatch(text, /127\.0\.0\.1:\d+.*hello\n$/m);
    } finally {
      clearTimeout(timer);
      try {
        a.close();
      } catch { /* closed by the timer */ }
      b.close();
    }
    const chatOut = await stop(chat);
    assertEquals(chatOut.code, 0, chatOut.stderr);
  }));

Deno.test("udp_echo.ts: echoes a datagram with its run line", () =>
  withFdCheck(async () => {
    const run = start("udp_echo.ts", ["--port", "0"]);
    const port = await run.port;
    await using reactor = new Reactor();
    const socket = DatagramSocket.open(reactor, { bind: { host: "127.0.0.1", port: 0 } });
    let reply = "";
    socket.onMessage = (data) => {
      reply = new TextDecoder().decode(data);
      reactor.stop();
    };
    // UDP may drop: resend until the echo comes (or 10 s pass).
    const resend = setInterval(
      () => socket.send(new TextEncoder().encode("dgram"), ipAddress("127.0.0.1", port)),
      100,
    );
    const timer = setTimeout(() => reactor.stop(), 10_000);
    socket.send(new TextEncoder().encode("dgram"), ipAddress("127.0.0.1", port));
    await reactor.run();
    clearInterval(resend);
    clearTimeout(timer);
    socket.close();
    assertEquals(reply, "dgram");
    const out = await stop(run);
    assertEquals(out.code, 0, out.stderr);
  }));

Deno.test("unix_echo.ts: removes its socket on exit, so a second run binds again; without read/write it refuses at once", () =>
  withFdCheck(async () => {
    const dir = await Deno.makeTempDir();
    try {
      const path = `${dir}/echo.sock`;
      for (const round of [1, 2]) {
        const run = start("unix_echo.ts", ["--path", path]);
        await run.port;
        const conn = await Deno.connect({ transport: "unix", path });
        await conn.write(new TextEncoder().encode("unix"));
        const got = new Uint8Array(4);
        let n = 0;
        while (n < 4) {
          const r = await conn.read(got.subarray(n));
          if (r === null) break;
          n += r;
        }
        conn.close();
        assertEquals(new TextDecoder().decode(got), "unix", `round ${round}`);
        const out = await stop(run);
        assertEquals(out.code, 0, `round ${round}: ${out.stderr}`);
        assertEquals(
          [...Deno.readDirSync(dir)].map((e) => e.name),
          [],
          `round ${round}: left its socket`,
        );
      }
      // Without the permissions to remove its socket file it refuses before binding.
      const bare = await start("unix_echo.ts", ["--path", path], ["--allow-ffi"]).output;
      assertEquals(bare.code, 2, bare.stderr);
      assertStringIncludes(bare.stderr, "needs --allow-read and --allow-write");
      assertEquals([...Deno.readDirSync(dir)].map((e) => e.name), []);
      // An abstract name needs neither.
      const name = `@ffinet-example-${Deno.pid}`;
      const abstract = start("unix_echo.ts", ["--path", name], ["--allow-ffi"]);
      await abstract.port;
      assertStringIncludes((await stop(abstract)).stdout, `listening on ${name}`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }));

Deno.test("fd_passing.ts: a child process serves the connection the parent accepted", () =>
  withFdCheck(async () => {
    const run = start("fd_passing.ts", ["--port", "0", "--workers", "1"]);
    const port = await run.port;
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    try {
      const buf = new Uint8Array(256);
      let text = "";
      while (!text.includes("\n")) {
        const n = await conn.read(buf);
        if (n === null) break;
        text += new TextDecoder().decode(buf.subarray(0, n));
      }
      const m = text.match(/^served by pid (\d+)\n/);
      if (m === null) throw new Error(`no greeting: ${text}`);
      assert(Number(m[1]) !== run.child.pid, "the parent served it itself");
    } finally {
      conn.close();
    }
    const out = await stop(run);
    assertEquals(out.code, 0, out.stderr);
  }));

Deno.test("http_server.ts: serves with its run line; the in-process privilege drop is gone", () =>
  withFdCheck(async () => {
    const run = start("http_server.ts", ["--port", "0"]);
    const port = await run.port;
    const hello = await fetch(`http://127.0.0.1:${port}/`);
    assertEquals(await hello.text(), "Hello, World!");
    const stats = await (await fetch(`http://127.0.0.1:${port}/stats`)).json();
    assertEquals(stats.worker, null);
    const out = await stop(run);
    assertEquals(out.code, 0, out.stderr);
    const refused = await start("http_server.ts", ["--port", "0", "--user-id", "0"]).output;
    assertEquals(refused.code, 2, refused.stderr);
    assertStringIncludes(refused.stderr, "unknown flag --user-id");
  }));

Deno.test("emfile.ts: with its run line, sheds clients past its fd limit and keeps serving the rest", () =>
  withFdCheck(async () => {
    const run = start("emfile.ts", [
      "--port",
      "0",
      "--limit",
      "64",
      "--clients",
      "100",
      "--seconds",
      "2",
    ]);
    await run.port;
    // It stops by itself once its hammering child is done.
    const timer = setTimeout(() => run.child.kill("SIGKILL"), 30_000);
    const out = await run.output;
    clearTimeout(timer);
    assertEquals(out.code, 0, out.stdout + out.stderr);
    const m = out.stdout.match(/clients done: (\d+) served, (\d+) shed/);
    if (m === null) throw new Error(`no client report:\n${out.stdout}${out.stderr}`);
    assert(Number(m[1]) > 0 && Number(m[2]) > 0, m[0]);
    assertEquals(Number(m[1]) + Number(m[2]), 100, m[0]);
  }));

Deno.test("the package ships its MIT LICENSE (deno.json's license, in what deno publish sends)", async () => {
  const license = await Deno.readTextFile(new URL("../../LICENSE", import.meta.url));
  assertMatch(license, /^MIT License\n\nCopyright \(c\) 2026 the ffinet authors\n/);
  const config = JSON.parse(await Deno.readTextFile(new URL("../../deno.json", import.meta.url)));
  assertEquals(config.license, "MIT");
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["publish", "--dry-run", "--allow-dirty", "--no-check"],
    cwd: new URL("../../", import.meta.url).pathname,
    stdin: "null",
  }).output();
  const listing = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assertEquals(out.code, 0, listing);
  assertMatch(listing, /\/LICENSE \(/);
});
