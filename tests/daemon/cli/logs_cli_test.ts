/**
 * Worker output through a running `serve --daemon`, to a PRIVATE syslog
 * socket (`--syslog`, a unix datagram socket in a temporary directory):
 * lines carry the worker's pid and priority with colours stripped, and a
 * flood is cut, its dropped lines counted in the log and in `status`.
 */
import { assert, assertEquals, assertGreater, assertMatch } from "@std/assert";
import { Socket } from "../../../ffi/socket.ts";
import { cli, daemonArgs } from "../fixtures/cli_run.ts";
import { alive, childrenOf, freePort, httpGet, killAll, waitUntil } from "../fixtures/helpers.ts";

Deno.test("logs: worker lines reach syslog with the worker's pid; a flood is counted", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ffinet-logs-cli-" });
  const sock = Socket.create("unix", "dgram");
  sock.bind({ family: "unix", path: `${dir}/log` });
  sock.setOption("receiveBufferSize", 8 * 1024 * 1024);
  const lines: string[] = [];
  const buf = new Uint8Array(65536);
  const decoder = new TextDecoder();
  const pump = setInterval(() => {
    for (let r; (r = sock.receiveFrom(buf)) !== null;) {
      lines.push(decoder.decode(buf.subarray(0, r.bytes)));
    }
  }, 2);
  const env = { FFINET_RUNTIME_DIR: dir };
  const port = freePort();
  const seen = new Set<number>();
  try {
    const r = await cli(
      [
        ...daemonArgs(port),
        "--workers",
        "1",
        "--syslog",
        `${dir}/log`,
      ],
      env,
    );
    assertEquals(r.code, 0, r.stderr);
    const sup = Number(r.stdout.trim());
    seen.add(sup);
    const worker = childrenOf(sup)[0]!;
    seen.add(worker);

    assertEquals((await httpGet(port, "/color")).body, "coloured");
    await waitUntil(() => lines.some((l) => l.includes("red stderr line")), 5000, "stderr line");
    const green = lines.find((l) => l.includes("green stdout line"))!;
    const red = lines.find((l) => l.includes("red stderr line"))!;
    assertMatch(green, new RegExp(`^<30>.* ffinet-serve\\[${worker}\\]: green stdout line$`));
    assertMatch(red, new RegExp(`^<27>.* ffinet-serve\\[${worker}\\]: red stderr line$`));
    assert(!green.includes("\x1b") && !red.includes("\x1b"), "colours stripped");
    assert(
      lines.some((l) => new RegExp(`ffinet-serve\\[${sup}\\]: listening on`).test(l)),
      "the supervisor's own lines carry its pid",
    );

    assertEquals((await httpGet(port, "/flood", 30_000)).body, "flooded");
    await waitUntil(
      () => lines.some((l) => /dropped \d+ output lines/.test(l)),
      10_000,
      "the drop report",
    );
    const report = lines.find((l) => /dropped \d+ output lines/.test(l))!;
    assertMatch(report, new RegExp(`^<28>.*: worker 0 \\(pid ${worker}\\): dropped \\d+ output`));
    const floodLines = lines.filter((l) => l.includes("flood line")).length;
    // The flood arrives in one burst: lines beyond the token bucket, or beyond
    // what the datagram queue (net.unix.max_dgram_qlen) holds, are dropped.
    assertGreater(floodLines, 0, "the first lines of the flood went through");
    assert(floodLines < 10_000, "the flood was cut");
    const st = JSON.parse((await cli(["status", "--json"], env)).stdout);
    const dropped = st.workers[0].droppedLines;
    assertGreater(dropped, 0);
    assertEquals(dropped + floodLines <= 10_000, true);
    const table = await cli(["status"], env);
    assert(table.stdout.includes(String(dropped)), table.stdout);

    const stop = await cli(["stop"], env);
    assertEquals(stop.code, 0, stop.stderr);
    for (const p of seen) await waitUntil(() => !alive(p), 5000, `pid ${p} to exit`);
  } finally {
    clearInterval(pump);
    killAll(seen);
    sock.close();
    await Deno.remove(dir, { recursive: true });
  }
});
