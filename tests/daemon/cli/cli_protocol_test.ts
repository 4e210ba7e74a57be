/**
 * `daemon/cli.ts` and its surroundings:
 *
 * - `--daemon` under a service manager (`NOTIFY_SOCKET`) forwards
 *   `READY=1` + `MAINPID=<daemon>`, and the daemon then tells the manager
 *   `RELOADING=1` (with `MONOTONIC_USEC=`) and `STOPPING=1` itself;
 * - `--drain-timeout` reaches the workers' `serve()`: a 12 s request
 *   survives a stop under `--drain-timeout 20000` (serve()'s own default
 *   would cut it at 10 s);
 * - the notify directory a `kill -9`ed supervisor leaves in `$TMPDIR` is
 *   removed by the next supervisor;
 * - `daemon/cli.ts` run by URL (a local HTTP server) starts its workers,
 *   which get `--allow-import` for that host.
 *
 * Every process is bounded and stopped; runtime and temporary directories
 * are private.
 */
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { cli as runCli, cliRunArgs } from "../fixtures/cli_run.ts";
import {
  alive,
  childrenOf,
  freePort,
  httpGet,
  killAll,
  SERVE_FLAGS,
  sleep,
  waitUntil,
} from "../fixtures/helpers.ts";
import { Socket } from "../../../ffi/socket.ts";
import { planTimeout } from "../../../daemon/cli/commands.ts";
import { alongside, type Case } from "../../_steps.ts";

const ROOT_DIR = new URL("../../../", import.meta.url).pathname;
const HTTP_MOD = new URL("../../../http/mod.ts", import.meta.url).href;

/** The cases that run one after the other. */
const IN_TURN: Case[] = [];
const test = (name: string, fn: () => Promise<void>) => void IN_TURN.push({ name, fn });

test("--daemon under NOTIFY_SOCKET forwards READY=1 and MAINPID; the daemon tells RELOADING=1 (MONOTONIC_USEC) and STOPPING=1", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ffinet-cliproto-" });
  const manager = Socket.create("unix", "dgram");
  manager.bind({ family: "unix", path: `${dir}/manager.sock` });
  const got: string[] = [];
  const buf = new Uint8Array(4096);
  const drain = () => {
    for (let m; (m = manager.receiveFrom(buf)) !== null;) {
      got.push(new TextDecoder().decode(buf.subarray(0, m.bytes)));
    }
  };
  let daemon = 0;
  try {
    const port = freePort();
    const r = await runCli([
      "--daemon",
      "--pidfile",
      `${dir}/serve.pid`,
      "--port",
      String(port),
      "--workers",
      "1",
      "--start-timeout",
      "30000",
      "--syslog",
      `${dir}/no-syslog`,
    ], { FFINET_RUNTIME_DIR: dir, NOTIFY_SOCKET: `${dir}/manager.sock` });
    assertEquals(r.code, 0, r.stderr);
    daemon = Number(r.stdout.trim());
    assertStringIncludes(r.stderr, "is not a syslog socket here", "the lost-output warning");
    drain();
    assert(
      got.some((m) => m.includes("READY=1") && m.includes(`MAINPID=${daemon}`)),
      `READY=1 + MAINPID=${daemon} forwarded: ${JSON.stringify(got)}`,
    );
    got.length = 0;
    // The clients derive how long to wait from the supervisor's own plan.
    const status = await runCli(["status", "--json", "--pidfile", `${dir}/serve.pid`], {
      FFINET_RUNTIME_DIR: dir,
    });
    const plan = JSON.parse(status.stdout).plan;
    assertEquals(plan, {
      workers: 1,
      startTimeoutMs: 30000,
      drainTimeoutMs: 10000,
      watchdogMs: 5000,
    });
    assertEquals(planTimeout("reload", plan), 45_000);
    const reload = await runCli(["reload", "--pidfile", `${dir}/serve.pid`], {
      FFINET_RUNTIME_DIR: dir,
    });
    assertEquals(reload.code, 0, reload.stderr);
    await waitUntil(
      () => {
        drain();
        return got.some((m) => m.startsWith("READY=1"));
      },
      10_000,
      "READY=1 after the reload",
    );
    assert(/^RELOADING=1\nMONOTONIC_USEC=\d+/.test(got[0]!), JSON.stringify(got));
    got.length = 0;
    const stop = await runCli(["stop", "--pidfile", `${dir}/serve.pid`], {
      FFINET_RUNTIME_DIR: dir,
    });
    assertEquals(stop.code, 0, stop.stderr);
    drain();
    assert(got.some((m) => m.startsWith("STOPPING=1")), JSON.stringify(got));
  } finally {
    if (daemon > 0 && alive(daemon)) killAll([daemon, ...childrenOf(daemon)]);
    manager.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli protocol: reload/stop/upgrade clients wait as long as the plan needs, not a fixed 15 s", () => {
  const plan = { workers: 4, startTimeoutMs: 10_000, drainTimeoutMs: 30_000, watchdogMs: 5000 };
  assertEquals(planTimeout("reload", plan), 4 * (10_000 + 30_000) + 5000);
  assertEquals(planTimeout("stop", plan), 30_000 + 5000);
  assertEquals(planTimeout("upgrade", plan), 2 * 10_000 + 30_000 + 5000);
  assertEquals(
    planTimeout("reload", { ...plan, workers: 256, drainTimeoutMs: 86_400_000 }),
    3_600_000,
  );
});

/**
 * A request that must outlive serve()'s own 10 s drain takes over 10 s;
 * the supervisor and its worker only wait meanwhile, so this case runs
 * alongside the others.
 */
async function drainTimeoutReachesServe(): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "ffinet-drain-" });
  const app = `${dir}/slow_app.ts`;
  Deno.writeTextFileSync(
    app,
    `import { serve } from "${HTTP_MOD}";\n` +
      `serve(async (req) => {\n` +
      `  if (new URL(req.url).pathname === "/slow") await new Promise((r) => setTimeout(r, 12_000));\n` +
      `  return new Response("done");\n` +
      `});\n`,
  );
  const port = freePort();
  const child = new Deno.Command(Deno.execPath(), {
    args: cliRunArgs([
      app,
      "--port",
      String(port),
      "--workers",
      "1",
      "--drain-timeout",
      "20000",
      "--start-timeout",
      "30000",
    ]),
    env: { NO_COLOR: "1", FFINET_RUNTIME_DIR: dir },
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const out = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  try {
    while (!text.includes("listening on")) {
      const r = await out.read();
      if (r.done) throw new Error(`the supervisor exited: ${text}`);
      text += r.value;
    }
    const slow = httpGet(port, "/slow", 25_000);
    await sleep(500);
    const t0 = performance.now();
    child.kill("SIGTERM");
    const reply = await slow;
    const ms = performance.now() - t0;
    assertEquals(reply.status, 200, "the in-flight request finished");
    assertEquals(reply.body, "done");
    assert(ms > 10_000, `it took ${ms} ms: served past serve()'s default 10 s`);
    assertEquals((await child.status).code, 0);
  } finally {
    try {
      child.kill("SIGKILL");
    } catch { /* exited */ }
    await child.status;
    await out.cancel().catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
}

test("the notify directory of a kill -9ed supervisor is removed by the next one", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ffinet-leftover-" });
  const tmp = `${dir}/tmp`;
  Deno.mkdirSync(tmp, { mode: 0o700 });
  const start = () =>
    new Deno.Command(Deno.execPath(), {
      args: cliRunArgs([
        "--port",
        String(freePort()),
        "--workers",
        "1",
        "--start-timeout",
        "30000",
      ]),
      env: { NO_COLOR: "1", TMPDIR: tmp, FFINET_RUNTIME_DIR: dir },
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).spawn();
  const ready = async (c: Deno.ChildProcess) => {
    const reader = c.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    while (!text.includes("listening on")) {
      const r = await reader.read();
      if (r.done) throw new Error(`the supervisor exited: ${text}`);
      text += r.value;
    }
    return reader;
  };
  const notifyDirs = () =>
    [...Deno.readDirSync(tmp)].map((e) => e.name).filter((n) => n.startsWith("ffinet-notify-"));
  const first = start();
  const second = { child: null as Deno.ChildProcess | null };
  const pids = new Set<number>([first.pid]);
  try {
    const r1 = await ready(first);
    for (const c of childrenOf(first.pid)) pids.add(c);
    const left = notifyDirs();
    assertEquals(left.length, 1, `${left}`);
    assert(left[0]!.startsWith(`ffinet-notify-${first.pid}-`), left[0]);
    first.kill("SIGKILL");
    await first.status;
    await r1.cancel().catch(() => {});
    for (const p of pids) await waitUntil(() => !alive(p), 5000, `pid ${p} (lifeline) to exit`);
    assertEquals(notifyDirs(), left, "kill -9 leaves it behind");
    second.child = start();
    const r2 = await ready(second.child);
    const now = notifyDirs();
    assertEquals(now.length, 1, `${now}`);
    assert(now[0]!.startsWith(`ffinet-notify-${second.child.pid}-`), "only the live one's remains");
    second.child.kill("SIGTERM");
    assertEquals((await second.child.status).code, 0);
    await r2.cancel().catch(() => {});
    assertEquals(notifyDirs(), [], "a clean stop removes its own");
  } finally {
    for (const c of [first, second.child]) {
      try {
        c?.kill("SIGKILL");
      } catch { /* exited */ }
      await c?.status;
    }
    killAll(pids);
    await Deno.remove(dir, { recursive: true });
  }
});

test("daemon/cli.ts run by URL serves, its workers get --allow-import for the host", async () => {
  // A local HTTP server of the repository's files (the same bytes a
  // remote copy would serve).
  const ac = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
    async (req) => {
      const path = decodeURIComponent(new URL(req.url).pathname);
      if (path.includes("..")) return new Response("no", { status: 400 });
      try {
        const body = await Deno.readFile(`${ROOT_DIR}${path.slice(1)}`);
        return new Response(body, { headers: { "content-type": "application/typescript" } });
      } catch {
        return new Response("not found", { status: 404 });
      }
    },
  );
  const host = `127.0.0.1:${server.addr.port}`;
  const dir = await Deno.makeTempDir({ prefix: "ffinet-url-" });
  const port = freePort();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      ...SERVE_FLAGS,
      `--allow-import=${host}`,
      `http://${host}/daemon/cli.ts`,
      "--port",
      String(port),
      "--workers",
      "1",
      "--start-timeout",
      "60000",
    ],
    env: { NO_COLOR: "1", FFINET_RUNTIME_DIR: dir, DENO_DIR: `${dir}/deno` },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const errText = new Response(child.stderr).text();
  const out = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  try {
    const deadline = Date.now() + 90_000;
    while (!text.includes("listening on") && Date.now() < deadline) {
      const r = await out.read();
      if (r.done) break;
      text += r.value;
    }
    if (!text.includes("listening on")) {
      child.kill("SIGKILL");
      throw new Error(`not listening: ${text}\n${await errText}`);
    }
    assertEquals((await httpGet(port)).body, "Hello, World!");
    child.kill("SIGTERM");
    assertEquals((await child.status).code, 0);
  } finally {
    try {
      child.kill("SIGKILL");
    } catch { /* exited */ }
    await child.status;
    await out.cancel().catch(() => {});
    await errText;
    ac.abort();
    await server.finished;
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli protocol", (t) =>
  alongside(t, {
    name:
      "--drain-timeout reaches the workers' serve(): a 12 s request outlives serve()'s own 10 s on stop",
    fn: drainTimeoutReachesServe,
  }, IN_TURN));
