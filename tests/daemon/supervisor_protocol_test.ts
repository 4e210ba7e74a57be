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
} from "../../daemon/supervisor.ts";
import { listOpenFds } from "../../ffi/fd.ts";
import { O } from "../../ffi/constants.ts";
import { openFile } from "../../ffi/process.ts";
import { close } from "../../ffi/syscalls.ts";
import { Socket } from "../../ffi/socket.ts";
import { alive, freePort, httpGet, killAll, procLink, waitUntil } from "./fixtures/helpers.ts";
import { NOTIFY_APP } from "./fixtures/supervised.ts";

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
      `python3 -c '${send}'; echo "Listening on http://0.0.0.0:8000/" >&2; echo "last words" >&2; exec sleep 30`,
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
    assert(await sup.reload());
    drain();
    assertEquals(got.map((m) => m.split("\n")[0]), ["RELOADING=1", "READY=1"]);
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
