/**
 * `daemon/cli.ts` (what `deno task serve` runs) with real processes and
 * signals, using the test app `fixtures/cli_app.ts` as APP: the daemon's
 * process properties, worker restarts, rolling restart on SIGHUP, draining
 * stop, start-up failure, `status`/`stop`, usage errors and the foreground
 * mode.
 */
import { assert, assertEquals, assertGreater, assertStringIncludes } from "@std/assert";
import { cli as runCli, CLI_APP, cliRunArgs, daemonArgs, type Run } from "../fixtures/cli_run.ts";
import {
  alive,
  answers,
  childrenOf,
  freePort,
  httpGet,
  keepRequesting,
  killAll,
  procFds,
  procLink,
  procRead,
  procStat,
  type RequestTally,
  sleep,
  waitUntil,
} from "../fixtures/helpers.ts";

const RUNTIME = await Deno.makeTempDir({ prefix: "ffinet-cli-rt-" });

/** Run `cli.ts args` to completion with a private runtime directory. */
function cli(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return runCli(args, { FFINET_RUNTIME_DIR: RUNTIME, ...env });
}

function readPid(path: string): number | null {
  try {
    return Number(Deno.readTextFileSync(path).trim());
  } catch {
    return null;
  }
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

Deno.test("cli: --help exits 0; bad flags and commands exit 2 with a message", async () => {
  const help = await cli(["--help"]);
  assertEquals(help.code, 0);
  for (
    const word of [
      "--port",
      "--host",
      "--workers",
      "--daemon",
      "--start-timeout",
      "--pidfile",
      "--umask",
    ]
  ) {
    assertStringIncludes(help.stdout, word);
  }
  for (const word of ["--user", "--group", "stop", "status", "reload", "--json", "SIGHUP"]) {
    assertStringIncludes(help.stdout, word);
  }
  for (const word of ["--drain-timeout", "--allow", "--deno-flag", "APP", "-- APP_ARGS"]) {
    assertStringIncludes(help.stdout, word);
  }
  assertStringIncludes(
    help.stdout,
    "Worker permissions by default: --allow-net --allow-env --allow-read --allow-ffi",
  );
  const cases: [string[], string][] = [
    [["--bogus"], "unknown flag --bogus"],
    [["--port", "http"], `Cannot parse --port: "http" is not an integer from 1 to 65535`],
    [["--port"], "Cannot parse --port: it needs a value"],
    [["--workers=0"], "Cannot parse --workers"],
    [["--umask", "999"], "Cannot parse --umask"],
    [["--user", "no-such-user-ffinet"], `Cannot resolve user "no-such-user-ffinet"`],
    [["frobnicate"], `Cannot parse APP: "frobnicate" is not a file (commands are status,`],
    [["stop", "--daemon"], "--daemon does not go with"],
    [["status", "--port", "80"], `--port does not go with "status"`],
    [["--json"], `--json goes with "status" only`],
    [["--workers", "257"], `Cannot parse --workers: "257" is not an integer from 1 to 256`],
    [["--drain-timeout", "-1"], "Cannot parse --drain-timeout"],
    [["--start-timeout", "0"], `Cannot parse --start-timeout: "0" is not an integer from 1`],
    [["--port", "8080.5"], "Cannot parse --port"],
    [["--user", "NaN"], `Cannot parse --user: "NaN" is not an integer from 0 to 4294967294`],
    [["--user", "4294967296"], `Cannot parse --user: "4294967296" is not an integer`],
    [["--user", "65534.9"], `Cannot parse --user: "65534.9" is not an integer`],
    [["--user", "-1"], "Cannot parse --user"],
    [["--group", "nogroup"], "Cannot parse --group: it needs --user"],
    [["--user", "nobody", "--group", "99999999999"], "Cannot parse --group"],
    [["--allow", "everything"], `Cannot parse --allow: "everything" is not one of`],
    [["--deno-flag", "oops"], `Cannot parse --deno-flag: "oops" is not a flag`],
    [[CLI_APP, "other.ts"], `unexpected "other.ts"`],
  ];
  const runs = await Promise.all(cases.map(([args]) => cli(args)));
  runs.forEach((r, i) => {
    const [args, message] = cases[i]!;
    assertEquals(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assertStringIncludes(r.stderr, message);
    assertStringIncludes(r.stderr, "--help");
    assertEquals(r.stdout, "");
  });
});

Deno.test("cli: --daemon serves detached; restarts, rolls and drains; stop leaves nothing", async (t) => {
  const port = freePort();
  const dir = await Deno.makeTempDir({ prefix: "ffinet-cli-" });
  const pidfile = `${dir}/serve.pid`;
  const seen = new Set<number>();
  let sup = 0;
  const workers = () => childrenOf(sup).filter((p) => alive(p));
  try {
    await t.step("the launcher returns the daemon's pid once it listens", async () => {
      const t0 = Date.now();
      const r = await cli([
        ...daemonArgs(port),
        "--pidfile",
        pidfile,
        "--umask",
        "027",
        "--drain-timeout",
        "5000",
      ]);
      assertEquals(r.code, 0, r.stderr);
      sup = Number(r.stdout.trim());
      assert(Number.isInteger(sup) && sup > 0, r.stdout);
      seen.add(sup);
      assertEquals(readPid(pidfile), sup, "the pid file names the supervisor");
      assert(Date.now() - t0 < 15_000);
      // Ready means listening: it answers at once.
      assertEquals((await httpGet(port)).body, "Hello, World!");
    });

    await t.step("it is a daemon: own session, no tty, cwd /, umask, only intended fds", () => {
      const stat = procStat(sup); // [state, ppid, pgrp, session, tty_nr, ...]
      assertEquals(Number(stat[3]), sup, "session id == pid");
      assertEquals(Number(stat[2]), sup, "process group id == pid");
      assertEquals(Number(stat[4]), 0, "tty_nr == 0: no controlling terminal");
      assertEquals(procLink(`/proc/${sup}/cwd`), "/");
      assertStringIncludes(procRead(`/proc/${sup}/status`), "Umask:\t0027");
      const fds = procFds(sup);
      assertEquals(
        fds.filter((f) => f.fd <= 2).map((f) => f.target),
        ["/dev/null", "/dev/null", "/dev/null"],
      );
      const unexpected = fds.filter((f) =>
        f.fd > 2 &&
        !/^(socket|pipe|anon_inode):/.test(f.target) &&
        f.target !== "/dev/null" && // Deno's own close-on-exec copies of stdio
        f.target !== pidfile &&
        // Deno's own module caches (sqlite files), in $DENO_DIR or ~/.cache/deno
        !/\/[a-z0-9_]+_cache_v\d+(-wal|-shm|-journal)?$/.test(f.target)
      );
      assertEquals(unexpected, [], "no unexpected fds");
      assert(fds.some((f) => f.target === pidfile), "the pid file is held open (locked)");
      const inheritable = fds.filter((f) => f.fd > 2 && !f.cloexec);
      assertEquals(inheritable, [], "every fd above 2 is close-on-exec");
      const ws = workers();
      assertEquals(ws.length, 2, "two workers");
      for (const w of ws) {
        seen.add(w);
        assertEquals(procStat(w)[4], "0", "workers have no controlling terminal either");
        assertStringIncludes(procRead(`/proc/${w}/status`), "Umask:\t0027");
      }
    });

    await t.step("a second daemon with the same pid file is refused", async () => {
      const r = await cli([
        ...daemonArgs(freePort()),
        "--pidfile",
        pidfile,
      ]);
      assertEquals(r.code, 1);
      assertStringIncludes(r.stderr, `already running with pid ${sup}`);
      const st = await cli(["status", "--pidfile", pidfile]);
      assertEquals(st.code, 0, st.stderr);
      const lines = st.stdout.trim().split("\n");
      assertStringIncludes(lines[0]!, `supervisor pid ${sup} running`);
      assertStringIncludes(lines[0]!, `listening on 127.0.0.1:${port}`);
      assertEquals(lines.length, 4, "a summary, a header and one line per worker");
      assertStringIncludes(lines[1]!, "pid");
      for (const w of lines.slice(2)) assertStringIncludes(w, "listening");
    });

    await t.step("a second daemon on the same port (another pid file) is refused", async () => {
      // Its workers would set SO_REUSEPORT too, and the kernel would let them
      // join the port and take a share of the first daemon's connections.
      const other = `${dir}/other.pid`;
      const r = await cli([
        ...daemonArgs(port),
        "--pidfile",
        other,
      ]);
      if (r.code === 0) { // it started after all: take it and its workers down
        const stray = Number(r.stdout.trim());
        [stray, ...childrenOf(stray)].forEach((p) => seen.add(p));
      }
      assertEquals(r.code, 1, r.stdout);
      assertStringIncludes(r.stderr, "Cannot bind: EADDRINUSE (Address already in use)");
      assertStringIncludes(r.stderr, `127.0.0.1:${port}`);
      assertEquals(exists(other), false, "no pid file is left behind");
      assertEquals(workers().length, 2);
      for (let i = 0; i < 20; i++) assertEquals((await httpGet(port)).body, "Hello, World!");
    });

    await t.step("a SIGKILLed worker is back and serving within the backoff", async () => {
      const before = workers();
      const victim = before[0]!;
      const t0 = Date.now();
      Deno.kill(victim, "SIGKILL");
      await waitUntil(
        () => {
          const now = workers();
          now.forEach((p) => seen.add(p));
          return now.length === 2 && !now.includes(victim);
        },
        5000,
        "a replacement worker",
      );
      await waitUntil(() => answers(port), 5000, "the port to answer");
      assert(!alive(victim));
      assert(Date.now() - t0 < 3000, `back in ${Date.now() - t0} ms`);
      // Give the new worker time to print "listening on" before the reload.
      await sleep(300);
    });

    await t.step("SIGHUP: rolling restart, no connection refused, new pids", async () => {
      const before = workers();
      const client = keepRequesting(port, 6000);
      let tally: RequestTally = { ok: 0, failures: [] };
      await sleep(100);
      Deno.kill(sup, "SIGHUP");
      try {
        await waitUntil(
          () => {
            const now = workers();
            now.forEach((p) => seen.add(p));
            return now.length === 2 && now.every((p) => !before.includes(p));
          },
          5000,
          "both workers to be replaced",
        );
      } finally {
        await sleep(200);
        tally = await client.stop();
      }
      assertEquals(tally.failures, [], "no connection failed");
      assertGreater(tally.ok, 10);
      for (const p of before) assert(!alive(p), `old worker ${p} exited`);
    });

    await t.step("serve stop drains an in-flight request and leaves nothing", async () => {
      const ws = workers();
      ws.forEach((p) => seen.add(p));
      const slow = httpGet(port, "/slow", 5000);
      await sleep(150);
      const stopped = await cli(["stop", "--pidfile", pidfile]);
      assertEquals(stopped.code, 0, stopped.stderr);
      assertEquals(stopped.stdout.trim(), `stopped (pid ${sup})`);
      const reply = await slow;
      assertEquals(reply.body, "slow done", "the in-flight response arrived complete");
      for (const p of seen) assert(!alive(p), `pid ${p} is gone`);
      assert(!exists(pidfile), "the pid file is removed");
      assert(!(await answers(port)), "nothing listens any more");
      const st = await cli(["status", "--pidfile", pidfile]);
      assertEquals(st.code, 3);
      assertEquals(st.stdout.trim(), `not running (no pid file ${pidfile})`);
      const again = await cli(["stop", "--pidfile", pidfile]);
      assertEquals(again.code, 0);
      assertStringIncludes(again.stdout, "not running");
    });
  } finally {
    killAll(seen);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli: --daemon fails with the worker's EADDRINUSE when the port is taken", async () => {
  const blocker = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (blocker.addr as Deno.NetAddr).port;
  const dir = await Deno.makeTempDir({ prefix: "ffinet-cli-" });
  const pidfile = `${dir}/serve.pid`;
  try {
    const r = await cli([
      ...daemonArgs(port),
      "--pidfile",
      pidfile,
    ]);
    assertEquals(r.code, 1, r.stdout);
    assertStringIncludes(r.stderr, "Cannot bind: EADDRINUSE (Address already in use)");
    assertStringIncludes(r.stderr, `127.0.0.1:${port}`);
    assertEquals(r.stdout, "");
    await waitUntil(() => !exists(pidfile), 2000, "the pid file to be removed");
  } finally {
    blocker.close();
    await Deno.remove(dir, { recursive: true });
  }
});

/** A foreground `serve`, up to its first stdout line. */
interface Foreground {
  child: Deno.ChildProcess;
  firstLine: string;
  stderr: Promise<string>;
  /** The rest of stdout, once it ends. */
  rest(): Promise<string>;
  /** Kill what is left and collect the status (for `finally`). */
  cleanup(): Promise<void>;
}

async function foreground(args: string[]): Promise<Foreground> {
  const env = Deno.env.toObject();
  env.FFINET_RUNTIME_DIR = RUNTIME;
  const child = new Deno.Command(Deno.execPath(), {
    args: cliRunArgs(args),
    env: { ...env, NO_COLOR: "1" },
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  const timer = setTimeout(() => child.kill("SIGKILL"), 10_000); // bound the wait
  try {
    while (!out.includes("\n")) {
      const next = await reader.read();
      if (next.done) break;
      out += next.value;
    }
  } finally {
    clearTimeout(timer);
  }
  const nl = out.indexOf("\n");
  const rest = async () => {
    let text = out.slice(nl + 1);
    for (;;) {
      const next = await reader.read();
      if (next.done) return text;
      text += next.value;
    }
  };
  return {
    child,
    firstLine: nl < 0 ? out : out.slice(0, nl),
    stderr,
    rest,
    cleanup: async () => {
      killAll([child.pid, ...childrenOf(child.pid)]);
      await reader.cancel().catch(() => {});
      await child.status;
      await stderr.catch(() => "");
    },
  };
}

Deno.test("cli: foreground: 'listening on', worker output on stderr, SIGTERM drains", async () => {
  const port = freePort();
  const fg = await foreground([CLI_APP, "--port", String(port), "--workers", "1"]);
  const seen = new Set<number>([fg.child.pid]);
  try {
    assertEquals(fg.firstLine, `listening on 127.0.0.1:${port}`);
    assertEquals((await httpGet(port)).body, "Hello, World!");
    childrenOf(fg.child.pid).forEach((p) => seen.add(p));
    assertEquals(seen.size, 2);
    const worker = [...seen].find((p) => p !== fg.child.pid)!;
    assertEquals((await httpGet(port, "/env")).body, `{"NO_COLOR":"1"}`, "workers get NO_COLOR");
    assertEquals((await httpGet(port, "/color")).body, "coloured");
    const slow = httpGet(port, "/slow", 5000);
    await sleep(150);
    fg.child.kill("SIGTERM");
    const reply = await slow;
    assertEquals(reply.status, 200, "the in-flight /slow request completed");
    assertEquals((await fg.child.status).code, 0);
    for (const p of seen) assert(!alive(p), `pid ${p} is gone`);
    assertEquals(await fg.rest(), "", "stdout holds only the 'listening on' line");
    const stderr = await fg.stderr;
    assertStringIncludes(stderr, "supervisor: stopped");
    // Worker lines reach the terminal tagged with the worker's pid, colours stripped.
    assertStringIncludes(stderr, `ffinet-serve[${worker}]: green stdout line\n`);
    assertStringIncludes(stderr, `ffinet-serve[${worker}]: red stderr line\n`);
    assert(!stderr.includes("\x1b["), "no colour codes");
  } finally {
    await fg.cleanup();
  }
});

/** Whether `serve()` of `http/` works yet (loaded by URL: no compile-time tie to http/). */
const SERVE_READY = await (async () => {
  try {
    const { serve } = await import(new URL("../../../http/mod.ts", import.meta.url).href);
    const s = serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => new Response(""));
    await s.shutdown();
    return true;
  } catch (e) {
    console.log(`(serve() check: ${(e as Error).message})`);
    return false;
  }
})();
if (!SERVE_READY) {
  console.log("skip: serve() in http/ does not work yet (the default app test needs it)");
}

Deno.test({
  name: "cli: with no APP, the bundled default app answers Hello, World!",
  ignore: !SERVE_READY,
  async fn() {
    const port = freePort();
    const fg = await foreground(["--port", String(port), "--workers", "1"]);
    try {
      assertEquals(fg.firstLine, `listening on 127.0.0.1:${port}`);
      assertEquals((await httpGet(port)).body, "Hello, World!");
      fg.child.kill("SIGTERM");
      assertEquals((await fg.child.status).code, 0);
    } finally {
      await fg.cleanup();
    }
  },
});

Deno.test("cli: nothing under daemon/ imports or names examples/", () => {
  const root = new URL("../../../daemon/", import.meta.url);
  const seen: string[] = [];
  const walk = (dir: URL, prefix: string) => {
    for (const e of Deno.readDirSync(dir)) {
      if (e.isDirectory) walk(new URL(`${e.name}/`, dir), `${prefix}${e.name}/`);
      if (!e.isFile || !e.name.endsWith(".ts")) continue;
      seen.push(`${prefix}${e.name}`);
      const text = Deno.readTextFileSync(new URL(e.name, dir));
      assert(!/examples\//.test(text), `daemon/${prefix}${e.name} mentions examples/`);
    }
  };
  walk(root, "");
  // The walk reaches every folder (a flat read would miss cli/ and supervisor/).
  for (const f of ["mod.ts", "cli.ts", "cli/main.ts", "supervisor/supervisor.ts"]) {
    assert(seen.includes(f), `daemon/${f} not read`);
  }
});

if (Deno.uid() !== 0) console.log("skip: not root: the --user privilege-drop CLI test needs root");

Deno.test({
  name: "cli: as root, the app's workers run as --user while the supervisor stays root",
  ignore: Deno.uid() !== 0,
  async fn() {
    const port = freePrivilegedPort();
    const fg = await foreground([
      CLI_APP,
      "--port",
      String(port),
      "--workers",
      "1",
      "--user",
      "nobody",
    ]);
    try {
      assert(port < 1024);
      assertEquals(fg.firstLine, `listening on 127.0.0.1:${port}`);
      const worker = childrenOf(fg.child.pid)[0];
      if (worker === undefined) throw new Error("no worker process");
      assertEquals(/^Uid:\s+(\d+)/m.exec(procRead(`/proc/${worker}/status`))?.[1], "65534");
      assertEquals(/^Uid:\s+(\d+)/m.exec(procRead(`/proc/${fg.child.pid}/status`))?.[1], "0");
      assert(await answers(port));
      fg.child.kill("SIGINT");
      assertEquals((await fg.child.status).code, 0);
      assert(!alive(worker));
    } finally {
      await fg.cleanup();
    }
  },
});

/** A free TCP port below 1024 on 127.0.0.1 (only root can bind one). */
function freePrivilegedPort(): number {
  for (let port = 900; port < 1024; port++) {
    try {
      Deno.listen({ hostname: "127.0.0.1", port }).close();
      return port;
    } catch { /* taken */ }
  }
  throw new Error("no free port below 1024");
}

globalThis.addEventListener("unload", () => {
  try {
    Deno.removeSync(RUNTIME, { recursive: true });
  } catch { /* already gone */ }
});
