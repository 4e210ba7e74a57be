/**
 * The supervisor speaks systemd's protocol to its workers: shared sockets on
 * fd 3+ with LISTEN_FDS/LISTEN_PID/LISTEN_FDNAMES, READY=1 from the worker's
 * own pid on a private NOTIFY_SOCKET, STATUS=, WATCHDOG=1, "listen"
 * readiness, and READY/RELOADING/STOPPING toward its own manager.
 */
import { assert, assertEquals, assertGreater, assertRejects, assertThrows } from "@std/assert";
import {
  Supervisor,
  type SupervisorEvent,
  type SupervisorOptions,
} from "../../../daemon/supervisor/supervisor.ts";
import { listOpenFds } from "../../../ffi/fd.ts";
import { O } from "../../../ffi/constants.ts";
import { openFile } from "../../../ffi/process.ts";
import { close } from "../../../ffi/syscalls.ts";
import { Socket } from "../../../ffi/socket.ts";
import { alive, freePort, httpGet, killAll, procLink, waitUntil } from "../fixtures/helpers.ts";
import { NOTIFY_APP } from "../fixtures/supervised.ts";
import { monotonicUsec } from "../../../daemon/supervisor/_monotonic.ts";
import { alongside } from "../../_steps.ts";

const quiet = { info: () => {}, warning: () => {}, error: () => {} };

function make(options: Partial<SupervisorOptions>, events: SupervisorEvent[] = []): {
  sup: Supervisor;
  seen: Set<number>;
} {
  const seen = new Set<number>();
  const sup = new Supervisor({
    ...(options.command === undefined ? { app: NOTIFY_APP } : {}),
    workers: 2,
    drainTimeoutMs: 3000,
    startTimeoutMs: 15_000,
    logger: quiet,
    onOutput: () => {},
    onEvent: (e) => {
      events.push(e);
      if (e.type === "spawn") seen.add(e.pid);
    },
    ...options,
  });
  return { sup, seen };
}

Deno.test("supervisor protocol: one shared socket on fd 3, READY=1, STATUS=, status()", async () => {
  const port = freePort();
  // An fd without FD_CLOEXEC in the supervisor: no worker may get it.
  const stray = openFile("/dev/zero", O.RDONLY);
  const { sup, seen } = make({ listen: { host: "127.0.0.1", port, name: "web" } });
  let notifyDir = "";
  try {
    await sup.start();
    notifyDir = sup.notifySocket!.slice(0, sup.notifySocket!.lastIndexOf("/"));
    assertEquals(Deno.statSync(notifyDir).mode! & 0o777, 0o700, "private NOTIFY_SOCKET directory");
    const st = sup.status();
    assertEquals(st.mode, "shared");
    assertEquals(st.readiness, "notify");
    assertEquals(st.listen, [{ fd: 3, name: "web", address: `127.0.0.1:${port}` }]);
    assertEquals(st.workers.map((w) => w.state), ["listening", "listening"]);
    for (const w of st.workers) {
      assertEquals(w.statusText, `worker ${w.id} serving`);
      assertGreater(w.rssBytes!, 1_000_000);
      assert(w.cpuMs !== null && w.cpuMs >= 0);
      assert(w.uptimeMs !== null && w.uptimeMs >= 0);
      assertEquals(w.listeningOn, `127.0.0.1:${port}`);
    }
    assertEquals((await httpGet(port)).body, "Hello, World!");
    assertEquals((await httpGet(port, "/env/NO_COLOR")).body, "1");
    assertEquals((await httpGet(port, "/env/FFINET_LIFELINE_FD")).body, "", "worker_main took it");
    const inode = /socket:\[\d+\]/;
    for (const pid of sup.pids) {
      const fds = listOpenFds(pid);
      assert(inode.test(fds.get(3) ?? ""), `fd 3 of ${pid} is the socket: ${fds.get(3)}`);
      assertEquals(fds.get(0), "/dev/null");
      assert(![...fds.values()].includes("/dev/zero"), `the stray fd leaked into ${pid}`);
      const sockets = [...fds.values()].filter((t) => t === fds.get(3));
      assertEquals(sockets.length, 1, "the listening socket is there once");
    }
    const pids = new Set<string>();
    for (let i = 0; i < 20; i++) pids.add((await httpGet(port, "/pid")).body);
    assert([...pids].every((p) => sup.pids.includes(Number(p))));
  } finally {
    await sup.stop();
    killAll(seen);
    close(stray);
  }
  for (const pid of seen) assert(!alive(pid), `worker ${pid} reaped`);
  assertEquals(sup.notifySocket, null);
  assertThrows(() => Deno.statSync(notifyDir), Deno.errors.NotFound, undefined, "dir removed");
});

Deno.test("supervisor protocol: LISTEN_PID is the worker's own pid (sh exec shim)", async () => {
  const port = freePort();
  const lines: string[] = [];
  const { sup, seen } = make({
    command: "/bin/sh",
    args: [
      "-c",
      'echo "pid=$$ listen_pid=$LISTEN_PID fds=$LISTEN_FDS names=$LISTEN_FDNAMES"; echo "listening on x"; exec sleep 30',
    ],
    readiness: "stdout",
    workers: 1,
    listen: [{ port }, { port: 0, name: "admin" }],
    onOutput: (line) => lines.push(line),
  });
  try {
    await sup.start();
    await waitUntil(() => lines.length > 0, 3000, "the worker's line");
    const pid = sup.status().workers[0]!.pid!;
    assertEquals(lines[0], `pid=${pid} listen_pid=${pid} fds=2 names=http:admin`);
  } finally {
    await sup.stop();
    killAll(seen);
  }
});

Deno.test("supervisor protocol: a Unix socket path, its mode, removed at stop; cwd", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ffinet-unix-" });
  const path = `${dir}/app.sock`;
  const { sup, seen } = make({
    workers: 1,
    listen: { path, mode: 0o600 },
    cwd: dir,
    appArgs: [],
  });
  try {
    await sup.start();
    assertEquals(Deno.statSync(path).mode! & 0o777, 0o600);
    assertEquals(sup.status().listen[0]!.address, path);
    const conn = await Deno.connect({ transport: "unix", path });
    await conn.write(new TextEncoder().encode("GET /pid HTTP/1.1\r\nConnection: close\r\n\r\n"));
    const buf = new Uint8Array(4096);
    let text = "";
    for (let n; (n = await conn.read(buf)) !== null;) {
      text += new TextDecoder().decode(buf.subarray(0, n));
    }
    conn.close();
    assert(text.endsWith(`\r\n\r\n${sup.pids[0]}`), text);
    assertEquals(procLink(`/proc/${sup.pids[0]}/cwd`), dir);
  } finally {
    await sup.stop();
    killAll(seen);
  }
  assertThrows(
    () => Deno.statSync(path),
    Deno.errors.NotFound,
    undefined,
    "the socket file is removed",
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("supervisor protocol: READY=1 counts only from the worker's pid; timeouts name the cause", async () => {
  // A child of the worker (another pid) sends READY=1: ignored.
  const send =
    `import socket,os; s=socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.sendto(b"READY=1", os.environ["NOTIFY_SOCKET"])`;
  const { sup, seen } = make({
    command: "/bin/sh",
    args: [
      "-c",
      // stderr first: a loaded box may take over 1.5 s to start python.
      `echo "Listening on http://0.0.0.0:8000/" >&2; echo "last words" >&2; python3 -c '${send}'; exec sleep 30`,
    ],
    workers: 1,
    listen: { port: 0 },
    startTimeoutMs: 1500,
  });
  try {
    const err = await assertRejects(() => sup.start(), Error);
    assert(err.message.startsWith("Cannot start worker 0 (pid "), err.message);
    assert(
      err.message.includes("did not send READY=1 on NOTIFY_SOCKET within 1500 ms"),
      err.message,
    );
    assert(err.message.includes("last stderr line: last words"), err.message);
    assert(!err.message.includes("Listening on"), err.message);
  } finally {
    await sup.stop();
    killAll(seen);
  }
  // The worker's own pid (python exec'd in its place) is heard.
  const ok = make({
    command: "/bin/sh",
    args: ["-c", `exec python3 -c '${send}; import time; time.sleep(30)'`],
    workers: 1,
    listen: { port: 0 },
    startTimeoutMs: 5000,
  });
  try {
    await ok.sup.start();
    assertEquals(ok.sup.status().workers[0]!.state, "listening");
  } finally {
    await ok.sup.stop();
    killAll(ok.seen);
  }
});

Deno.test("supervisor protocol: a worker that stops sending WATCHDOG=1 is killed and replaced", async () => {
  const events: SupervisorEvent[] = [];
  const { sup, seen } = make({
    workers: 1,
    listen: { port: 0 },
    watchdogMs: 400,
    appArgs: ["--stall-after", "600"],
  }, events);
  try {
    await sup.start();
    const first = sup.status().workers[0]!.pid!;
    await waitUntil(() => events.some((e) => e.type === "watchdog"), 5000, "the watchdog");
    await waitUntil(
      () =>
        sup.status().workers[0]!.state === "listening" && sup.status().workers[0]!.pid !== first,
      8000,
      "a replacement",
    );
    assertEquals(sup.status().workers[0]!.lastExit?.signal, "SIGKILL");
    assertGreater(sup.status().counters.watchdogKills, 0);
    assertEquals(sup.status().workers[0]!.restarts, 1);
  } finally {
    await sup.stop();
    killAll(seen);
  }
});

Deno.test("supervisor protocol: a hung worker is replaced within 2 watchdog deadlines, logged and counted; healthy workers answer meanwhile", async () => {
  const events: SupervisorEvent[] = [];
  const port = freePort();
  const warnings: string[] = [];
  let stalledAt = 0;
  const deadline = 2000;
  const { sup, seen } = make({
    workers: 2,
    listen: { port },
    watchdogMs: deadline,
    appArgs: ["--stall-after", "800", "--stall-worker", "0"],
    logger: { ...quiet, warning: (m: unknown) => warnings.push(String(m)) },
    onOutput: (line) => {
      if (line.includes("stalling now") && stalledAt === 0) stalledAt = performance.now();
    },
  }, events);
  try {
    await sup.start();
    const first = sup.status().workers[0]!.pid!;
    await waitUntil(() => stalledAt > 0, 10_000, "worker 0 to block its event loop");
    // Worker 1 is healthy: new connections are answered while worker 0 hangs.
    for (let i = 0; i < 10; i++) assertEquals((await httpGet(port, "/", 5000)).status, 200);
    await waitUntil(() => events.some((e) => e.type === "watchdog"), 3 * deadline, "the watchdog");
    const caughtMs = performance.now() - stalledAt;
    assert(caughtMs <= 2 * deadline, `the hung worker was caught after ${caughtMs} ms`);
    console.log(
      `watchdog: hung worker killed ${
        caughtMs.toFixed(0)
      } ms after it blocked (deadline ${deadline} ms)`,
    );
    await waitUntil(
      () =>
        sup.status().workers[0]!.state === "listening" && sup.status().workers[0]!.pid !== first,
      15_000,
      "the replacement",
    );
    const w0 = sup.status().workers[0]!;
    assertEquals(w0.watchdogKills, 1, "counted on the slot");
    assertEquals(sup.status().workers[1]!.watchdogKills, 0);
    assertEquals(sup.status().counters.watchdogKills, 1);
    assert(
      warnings.some((m) => m.includes(`(pid ${first}) sent no WATCHDOG=1`)),
      warnings.join("\n"),
    );
    assertEquals((await httpGet(port, "/", 5000)).status, 200);
  } finally {
    await sup.stop();
    killAll(seen);
  }
});

Deno.test("supervisor protocol: healthy workers that heartbeat only through the preload are never killed by the watchdog", async () => {
  // The app sends no WATCHDOG=1 itself: the preloaded worker_main.ts does,
  // from the app's event loop, every 500 ms. A supervisor that ignored
  // WATCHDOG=1 would kill both workers about every 1.5 s. (A tighter
  // deadline, 300 ms, was missed on a loaded 2-core box.)
  const events: SupervisorEvent[] = [];
  const { sup, seen } = make({
    workers: 2,
    listen: { port: 0 },
    watchdogMs: 1500,
    appArgs: ["--no-watchdog"],
  }, events);
  try {
    await sup.start();
    const pids = sup.pids;
    // Over two deadlines: a worker whose heartbeats were not counted is killed
    // 1.5 s after it is ready.
    await new Promise((r) => setTimeout(r, 3500));
    assertEquals(events.filter((e) => e.type === "watchdog"), [], "no watchdog kill");
    assertEquals(sup.status().counters.watchdogKills, 0);
    assertEquals(sup.pids, pids, "the same workers");
  } finally {
    await sup.stop();
    killAll(seen);
  }
});

Deno.test("supervisor protocol: readiness 'listen' for an app that cannot notify (shared and SO_REUSEPORT)", async () => {
  const port = freePort();
  const shared = make({ listen: { port }, readiness: "listen", appArgs: ["--no-notify"] });
  try {
    await shared.sup.start();
    assertEquals(shared.sup.status().workers.map((w) => w.state), ["listening", "listening"]);
    assertEquals((await httpGet(port)).body, "Hello, World!");
  } finally {
    await shared.sup.stop();
    killAll(shared.seen);
  }
  const port2 = freePort();
  const own = make({
    reusePort: true,
    listen: { port: port2 },
    readiness: "listen",
    appArgs: ["--no-notify", "--port", String(port2)],
  });
  try {
    await own.sup.start();
    assertEquals(own.sup.status().mode, "reuseport");
    assertEquals((await httpGet(port2)).body, "Hello, World!");
  } finally {
    await own.sup.stop();
    killAll(own.seen);
  }
});

Deno.test("supervisor protocol: READY=1 + MAINPID, RELOADING=1, READY=1, STOPPING=1 to its own manager", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ffinet-manager-" });
  const manager = Socket.create("unix", "dgram");
  manager.bind({ family: "unix", path: `${dir}/notify` });
  const old = Deno.env.get("NOTIFY_SOCKET");
  Deno.env.set("NOTIFY_SOCKET", `${dir}/notify`);
  const { sup, seen } = make({ workers: 1, listen: { port: 0 } });
  const got: string[] = [];
  const drain = () => {
    const buf = new Uint8Array(4096);
    for (let r; (r = manager.receiveFrom(buf)) !== null;) {
      got.push(new TextDecoder().decode(buf.subarray(0, r.bytes)));
    }
  };
  try {
    await sup.start();
    drain();
    assert(
      got.some((m) => m.includes("READY=1") && m.includes(`MAINPID=${Deno.pid}`)),
      got.join("|"),
    );
    got.length = 0;
    const before = monotonicUsec()!;
    assert(await sup.reload());
    const after = monotonicUsec()!;
    drain();
    assertEquals(got.map((m) => m.split("\n")[0]), ["RELOADING=1", "READY=1"]);
    // systemd >= 253 (Type=notify-reload) wants the CLOCK_MONOTONIC time of the reload.
    const usec = BigInt(/MONOTONIC_USEC=(\d+)/.exec(got[0]!)?.[1] ?? "0");
    assert(before <= usec && usec <= after, `MONOTONIC_USEC ${usec} not in [${before}, ${after}]`);
    got.length = 0;
    await sup.stop();
    drain();
    assertEquals(got.map((m) => m.split("\n")[0]), ["STOPPING=1"]);
  } finally {
    if (old === undefined) Deno.env.delete("NOTIFY_SOCKET");
    else Deno.env.set("NOTIFY_SOCKET", old);
    await sup.stop();
    killAll(seen);
    manager.close();
    await Deno.remove(dir, { recursive: true });
  }
});

async function managerWatchdog(): Promise<void> {
  // A private socket stands in for systemd with WatchdogSec= (WATCHDOG_USEC
  // 300 ms): the supervisor pings at half of it while it supervises, and
  // stops once a worker slot is given up, so the manager restarts it.
  const dir = await Deno.makeTempDir({ prefix: "ffinet-manager-" });
  const manager = Socket.create("unix", "dgram");
  manager.bind({ family: "unix", path: `${dir}/notify` });
  const got: string[] = [];
  const buf = new Uint8Array(4096);
  const pump = setInterval(() => {
    for (let r; (r = manager.receiveFrom(buf)) !== null;) {
      got.push(new TextDecoder().decode(buf.subarray(0, r.bytes)));
    }
  }, 10);
  const pings = () => got.filter((m) => m.split("\n").includes("WATCHDOG=1")).length;
  const events: SupervisorEvent[] = [];
  const { sup, seen } = make({
    workers: 2,
    listen: { port: 0 },
    managerSocket: `${dir}/notify`,
    managerWatchdogMs: 300,
    maxRestarts: 0,
  }, events);
  try {
    assertEquals(pings(), 0);
    await sup.start();
    await waitUntil(() => pings() >= 3, 10_000, "WATCHDOG=1 every 150 ms while supervising");
    assert(sup.supervising);
    // One worker dies and may not be restarted (maxRestarts 0): its slot is
    // given up, the other worker still serves, and the supervisor still runs.
    const victim = sup.status().workers[0]!.pid!;
    Deno.kill(victim, "SIGKILL");
    await waitUntil(() => events.some((e) => e.type === "gave-up"), 10_000, "slot given up");
    assertEquals(sup.state, "running");
    assertEquals(sup.status().workers.map((w) => w.state), ["failed", "listening"]);
    assertEquals(sup.supervising, false);
    await new Promise((r) => setTimeout(r, 100)); // a ping already on its way
    const after = pings();
    await new Promise((r) => setTimeout(r, 1500)); // 10 ping intervals
    assertEquals(pings(), after, "no WATCHDOG=1 once a slot is given up");
  } finally {
    await sup.stop();
    clearInterval(pump);
    killAll(seen);
    manager.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("supervisor protocol: a reload stops each old worker only after its replacement is ready", async () => {
  const events: SupervisorEvent[] = [];
  const { sup, seen } = make({ workers: 2, listen: { port: 0 } }, events);
  try {
    await sup.start();
    const old = new Map(sup.status().workers.map((w) => [w.id, w.pid!]));
    const mark = events.length;
    assert(await sup.reload());
    const during = events.slice(mark);
    for (const [id, pid] of old) {
      const fresh = during.find((e) => e.type === "spawn" && e.id === id && e.replacement);
      if (fresh?.type !== "spawn") throw new Error(`slot ${id} got no replacement`);
      const freshPid = fresh.pid;
      const ready = during.findIndex((e) => e.type === "listening" && e.pid === freshPid);
      const gone = during.findIndex((e) => e.type === "exit" && e.pid === pid);
      assert(ready >= 0 && gone >= 0, JSON.stringify(during));
      assert(ready < gone, `slot ${id}: the old worker exited before its replacement was ready`);
      // And it was asked to stop after that too: the replacement was ready
      // before the slot's next worker was spawned.
      const nextSpawn = during.findIndex((e, i) => i > ready && e.type === "spawn");
      if (nextSpawn >= 0) assert(gone < nextSpawn, "one slot at a time");
    }
  } finally {
    await sup.stop();
    killAll(seen);
  }
});

async function backoffResets(): Promise<void> {
  const events: SupervisorEvent[] = [];
  const { sup, seen } = make({
    workers: 1,
    listen: { port: 0 },
    stableAfterMs: 2500,
    restartDelayMs: 100,
    restartDelayFactor: 2,
  }, events);
  const delays = () =>
    events.filter((e) => e.type === "restart-scheduled").map((e) =>
      e.type === "restart-scheduled" ? e.delayMs : 0
    );
  const killCurrent = async () => {
    const pid = sup.status().workers[0]!.pid!;
    const n = events.filter((e) => e.type === "listening").length;
    Deno.kill(pid, "SIGKILL");
    await waitUntil(
      () => events.filter((e) => e.type === "listening").length > n,
      20_000,
      "the restarted worker",
    );
  };
  try {
    await sup.start();
    await killCurrent(); // up briefly: 100
    await killCurrent(); // 200
    await killCurrent(); // 400
    assertEquals(delays(), [100, 200, 400]);
    // Up longer than stableAfterMs: the next crash starts again from 100.
    await new Promise((r) => setTimeout(r, 3000));
    await killCurrent();
    assertEquals(delays(), [100, 200, 400, 100]);
  } finally {
    await sup.stop();
    killAll(seen);
  }
}

async function lastWords(): Promise<void> {
  const warnings: string[] = [];
  const logger = { ...quiet, warning: (m: unknown) => warnings.push(String(m)) };
  // Printed at start, long before the SIGKILL: not the reason.
  const stale = make({
    command: "/bin/sh",
    args: [
      "-c",
      `echo "Cannot frobnicate: a stale warning" >&2; echo "listening on x"; exec sleep 30`,
    ],
    workers: 1,
    readiness: "stdout",
    logger,
  });
  try {
    await stale.sup.start();
    const pid = stale.sup.pids[0]!;
    await new Promise((r) => setTimeout(r, 2500));
    Deno.kill(pid, "SIGKILL");
    await waitUntil(() => warnings.some((w) => w.includes(`(pid ${pid})`)), 5000, "the exit");
    const line = warnings.find((w) => w.includes(`(pid ${pid})`))!;
    assert(line.includes("was killed by SIGKILL"), line);
    assert(!line.includes("stale warning"), `a stale line quoted: ${line}`);
  } finally {
    await stale.sup.stop();
    killAll(stale.seen);
  }
  warnings.length = 0;
  // Printed just before it exits: the reason.
  const fresh = make({
    command: "/bin/sh",
    args: ["-c", `echo "listening on x"; sleep 0.3; echo "Cannot go on: out of frobs" >&2; exit 3`],
    workers: 1,
    readiness: "stdout",
    logger,
    restartDelayMs: 60_000,
  });
  try {
    await fresh.sup.start();
    await waitUntil(() => warnings.some((w) => w.includes("exited with code 3")), 5000, "the exit");
    const line = warnings.find((w) => w.includes("exited with code 3"))!;
    assert(line.includes("Cannot go on: out of frobs"), line);
  } finally {
    await fresh.sup.stop();
    killAll(fresh.seen);
  }
}

Deno.test("supervisor protocol: every SIGKILL a reload or a stop sends is logged", async () => {
  const warnings: string[] = [];
  // Workers that ignore SIGTERM: only the drain timeout's SIGKILL ends them.
  const { sup, seen } = make({
    workers: 1,
    listen: { port: 0 },
    drainTimeoutMs: 500,
    appArgs: ["--ignore-term"],
    logger: { ...quiet, warning: (m: unknown) => warnings.push(String(m)) },
  });
  try {
    await sup.start();
    const old = sup.pids[0]!;
    assert(await sup.reload());
    assert(
      warnings.some((w) =>
        w.includes(`reload: old worker 0 (pid ${old}) still running after 500 ms: SIGKILL`)
      ),
      warnings.join("\n"),
    );
    warnings.length = 0;
    const current = sup.pids[0]!;
    await sup.stop();
    assert(
      warnings.some((w) =>
        w.includes(`1 worker(s) still running after 500 ms: SIGKILL (pid ${current})`)
      ),
      warnings.join("\n"),
    );
  } finally {
    await sup.stop();
    killAll(seen);
  }
});

Deno.test("supervisor protocol: options are checked before anything starts", () => {
  assertThrows(
    () => new Supervisor({ app: NOTIFY_APP, group: 65534 }),
    RangeError,
    "group without user",
  );
  assertThrows(
    () => new Supervisor({ app: NOTIFY_APP, listen: { port: 70000 } }),
    RangeError,
    "port",
  );
  assertThrows(
    () => new Supervisor({ app: NOTIFY_APP, readiness: "bogus" as "notify" }),
    RangeError,
    "readiness",
  );
  assertThrows(() => new Supervisor({ app: NOTIFY_APP, watchdogMs: 0 }), RangeError, "watchdogMs");
  assertThrows(() => new Supervisor({}), TypeError, "app or command");
});

// The restart backoff case waits for stableAfterMs; the manager's watchdog
// and the last-words cases (which also wait, and measure nothing tighter)
// run meanwhile.
Deno.test("supervisor protocol: the restart backoff; meanwhile the manager's watchdog and last words", (t) =>
  alongside(
    t,
    { name: "the restart backoff resets once a worker stayed up stableAfterMs", fn: backoffResets },
    [
      {
        name: "it passes its manager's watchdog on only while it can supervise",
        fn: managerWatchdog,
      },
      {
        name: "an exit reason quotes the worker's last words, never a stale stderr line",
        fn: lastWords,
      },
    ],
  ));
