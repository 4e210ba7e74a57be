/**
 * The supervisor upgrades itself (`serve upgrade`, SIGUSR2): a new
 * supervisor started from the code on disk takes over the listening
 * sockets, the pid file and the control socket, starts its workers, and
 * only then do the old workers drain and the old supervisor exit.
 *
 * - two upgrades in a row under `wrk -c64` with the bundled `serve()` app:
 *   0 failed requests, `status` answers throughout, the pid changes each
 *   time and the pid file follows, the old supervisor and workers are gone;
 * - a new supervisor that cannot start (the app on disk now throws): the
 *   upgrade fails with that reason and the old one stays in charge;
 * - SIGUSR2 upgrades too; under a service manager the new pid is announced
 *   with `MAINPID=`.
 *
 * Every supervisor runs in a private runtime directory and is stopped (or
 * killed) at the end.
 */
import { assert, assertEquals, assertNotEquals, assertStringIncludes } from "@std/assert";
import { cli as runCli, cliRunArgs } from "../fixtures/cli_run.ts";
import {
  alive,
  childrenOf,
  freePort,
  httpGet,
  killAll,
  sleep,
  waitUntil,
} from "../fixtures/helpers.ts";
import { haveWrk, runWrk } from "../fixtures/supervised.ts";
import { Socket } from "../../../ffi/socket.ts";

const DEFAULT_APP = new URL("../../../daemon/cli/default_app.ts", import.meta.url).pathname;
const WRK = haveWrk();
if (!WRK) {
  console.log(
    "skip: wrk is not installed (apt-get install wrk): the upgrade-under-load test is skipped",
  );
}

function readPid(path: string): number {
  return Number(Deno.readTextFileSync(path).trim());
}

/** Start a daemon on `port` with `app`; returns its pid. */
async function startDaemon(dir: string, port: number, app: string): Promise<number> {
  const r = await runCli([
    app,
    "--daemon",
    "--pidfile",
    `${dir}/serve.pid`,
    "--port",
    String(port),
    "--workers",
    "2",
    "--start-timeout",
    "30000",
    "--drain-timeout",
    "5000",
    "--syslog",
    `${dir}/no-syslog`,
  ], { FFINET_RUNTIME_DIR: dir });
  assertEquals(r.code, 0, r.stderr);
  return Number(r.stdout.trim());
}

function cli(dir: string, args: string[]) {
  return runCli([...args, "--pidfile", `${dir}/serve.pid`], { FFINET_RUNTIME_DIR: dir }, 120_000);
}

/** Everything a test started, killed if still there. */
function cleanup(pids: Iterable<number>): void {
  const all = new Set<number>();
  for (const p of pids) {
    all.add(p);
    if (alive(p)) { for (const c of childrenOf(p)) all.add(c); }
  }
  killAll(all);
}

Deno.test({
  name:
    "upgrade: two upgrades in a row under wrk -c64: 0 failed requests, status throughout, the pid file follows",
  ignore: !WRK,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "ffinet-upgrade-" });
    const port = freePort();
    const pids = new Set<number>();
    const loaded = new AbortController();
    try {
      const first = await startDaemon(dir, port, DEFAULT_APP);
      pids.add(first);
      const firstWorkers = childrenOf(first);
      // Load from before the first upgrade until 1 s after the second one's old
      // supervisor and workers are gone.
      const load = runWrk(`http://127.0.0.1:${port}/`, 90, 64, loaded.signal);
      // status, every 50 ms, all along
      let statusRuns = 0;
      const statusFailures: string[] = [];
      let polling = true;
      const poller = (async () => {
        while (polling) {
          const s = await cli(dir, ["status", "--json"]);
          statusRuns++;
          if (s.code !== 0) statusFailures.push(`${s.code}: ${s.stderr}${s.stdout}`);
          await sleep(50);
        }
      })();
      await sleep(1000);
      const seen = [first];
      for (let i = 0; i < 2; i++) {
        const previous = [seen.at(-1)!, ...childrenOf(seen.at(-1)!)];
        const up = await cli(dir, ["upgrade"]);
        assertEquals(up.code, 0, up.stderr);
        const now = readPid(`${dir}/serve.pid`);
        pids.add(now);
        assertStringIncludes(up.stdout, `upgraded (pid ${seen.at(-1)} -> ${now})`);
        assertNotEquals(now, seen.at(-1), "a new supervisor");
        seen.push(now);
        // The old supervisor and its workers drain and exit under the load, and the
        // new ones serve it for 1 s more.
        for (const old of previous) {
          await waitUntil(() => !alive(old), 10_000, `old pid ${old} to exit`);
        }
        await sleep(1000);
      }
      loaded.abort();
      const r = await load;
      polling = false;
      await poller;
      console.log(
        `upgrade: ${r.requests} requests, ${r.totalErrors} errors across 2 upgrades; ` +
          `status ran ${statusRuns} times, ${statusFailures.length} failed; pids ${
            seen.join(" -> ")
          }`,
      );
      assert(r.requests > 1000, r.text);
      assertEquals(r.totalErrors, 0, r.text);
      assertEquals(statusFailures, [], "status answered throughout");
      for (const old of [...seen.slice(0, -1), ...firstWorkers]) {
        await waitUntil(() => !alive(old), 10_000, `old pid ${old} to exit`);
      }
      const last = seen.at(-1)!;
      assertEquals(readPid(`${dir}/serve.pid`), last);
      const status = JSON.parse((await cli(dir, ["status", "--json"])).stdout);
      assertEquals(status.pid, last);
      assertEquals(status.workers.map((w: { state: string }) => w.state), [
        "listening",
        "listening",
      ]);
      const stop = await cli(dir, ["stop"]);
      assertEquals(stop.code, 0, stop.stderr);
      await waitUntil(() => !alive(last), 10_000, "the last supervisor to stop");
    } finally {
      loaded.abort();
      cleanup(pids);
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("upgrade: a new supervisor that cannot start leaves the old one in charge, with the reason", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ffinet-upgrade-fail-" });
  const app = `${dir}/app.ts`;
  const http = new URL("../../../http/mod.ts", import.meta.url).href;
  Deno.writeTextFileSync(
    app,
    `import { serve } from "${http}";\nserve(() => new Response("Hello, World!"));\n`,
  );
  const port = freePort();
  const pids = new Set<number>();
  try {
    const pid = await startDaemon(dir, port, app);
    pids.add(pid);
    const workers = childrenOf(pid);
    // The code on disk is now broken: the new supervisor's workers fail.
    Deno.writeTextFileSync(app, `throw new Error("the new code is broken");\n`);
    const up = await cli(dir, ["upgrade"]);
    assertEquals(up.code, 1, up.stdout);
    assertStringIncludes(up.stderr, "the new code is broken");
    assertStringIncludes(up.stderr, `pid ${pid} is still in charge`);
    assertEquals(readPid(`${dir}/serve.pid`), pid, "the pid file still names the old one");
    const status = JSON.parse((await cli(dir, ["status", "--json"])).stdout);
    assertEquals(status.pid, pid);
    assertEquals(childrenOf(pid).sort(), workers.sort(), "the old workers still serve");
    assertEquals((await httpGet(port)).body, "Hello, World!");
    // No second supervisor lingers.
    for (const c of childrenOf(pid)) assert(workers.includes(c), `unexpected child ${c}`);
    const stop = await cli(dir, ["stop"]);
    assertEquals(stop.code, 0, stop.stderr);
  } finally {
    cleanup(pids);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("upgrade: SIGUSR2 upgrades a foreground supervisor, and MAINPID= tells its manager", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ffinet-upgrade-usr2-" });
  const port = freePort();
  const manager = Socket.create("unix", "dgram");
  manager.bind({ family: "unix", path: `${dir}/manager.sock` });
  const pids = new Set<number>();
  // No pipe: the new supervisor inherits the old one's stdio, and would hold
  // a pipe open after the old one exited. Its stderr goes to a file, shown
  // when the test fails.
  const log = `${dir}/stderr.log`;
  const child = new Deno.Command("sh", {
    args: [
      "-c",
      'exec "$0" "$@" 2>"$FFINET_TEST_LOG"',
      Deno.execPath(),
      ...cliRunArgs([
        "--pidfile",
        `${dir}/serve.pid`,
        "--port",
        String(port),
        "--workers",
        "1",
        "--start-timeout",
        "30000",
      ]),
    ],
    env: {
      NOTIFY_SOCKET: `${dir}/manager.sock`,
      NO_COLOR: "1",
      FFINET_RUNTIME_DIR: dir,
      FFINET_TEST_LOG: log,
    },
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const logText = () => {
    try {
      return Deno.readTextFileSync(log);
    } catch {
      return "";
    }
  };
  pids.add(child.pid);
  const got: string[] = [];
  const buf = new Uint8Array(4096);
  const drain = () => {
    for (let m; (m = manager.receiveFrom(buf)) !== null;) {
      got.push(new TextDecoder().decode(buf.subarray(0, m.bytes)));
    }
  };
  try {
    await waitUntil(
      () => {
        drain();
        return got.some((m) => m.includes("READY=1"));
      },
      30_000,
      "READY=1 from the supervisor",
    );
    assert(got.some((m) => m.includes(`MAINPID=${child.pid}`)), got.join(" | "));
    child.kill("SIGUSR2");
    let next = 0;
    await waitUntil(
      () => {
        drain();
        const m = got.map((g) => /MAINPID=(\d+)/.exec(g)?.[1]).filter((p) => p !== undefined)
          .map(Number).find((p) => p !== child.pid);
        next = m ?? 0;
        return next > 0;
      },
      60_000,
      "MAINPID= of the new supervisor",
    ).catch((e) => {
      throw new Error(`${(e as Error).message}; notify: ${got.join(" | ")}; stderr: ${logText()}`);
    });
    pids.add(next);
    assertEquals(readPid(`${dir}/serve.pid`), next);
    const status = await child.status;
    assertEquals(status.code, 0, "the old supervisor exits 0 once it handed over");
    assertEquals((await httpGet(port)).body, "Hello, World!");
    drain();
    assert(!got.some((m) => m.includes("STOPPING=1")), `no STOPPING=1 on hand-over: ${got}`);
    const stop = await cli(dir, ["stop"]);
    assertEquals(stop.code, 0, stop.stderr);
  } finally {
    cleanup(pids);
    await child.status.catch(() => {});
    manager.close();
    await Deno.remove(dir, { recursive: true });
  }
});
