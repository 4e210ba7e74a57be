/**
 * The daemon's pid file and control socket faults, as tests:
 * a planted pid is never signalled, a symlinked or foreign pid file is
 * refused cleanly by every command, and the default pid file lives in a
 * private runtime directory (here `FFINET_RUNTIME_DIR`, never /run or /tmp)
 * beside a 0600 control socket that `status`, `reload` and `stop` use.
 */
import { assert, assertEquals, assertNotEquals, assertStringIncludes } from "@std/assert";
import { ControlServer } from "../../../daemon/control.ts";
import { PidFile } from "../../../daemon/pidfile.ts";
import { cli, CLI_APP, daemonArgs, withRuntimeDir } from "../fixtures/cli_run.ts";
import {
  alive,
  childrenOf,
  freePort,
  httpGet,
  killAll,
  procRead,
  waitUntil,
} from "../fixtures/helpers.ts";

/** A process to plant: `sleep 60`, killed by the caller. */
function victim(): Deno.ChildProcess {
  return new Deno.Command("sleep", { args: ["60"], stdout: "null", stderr: "null" }).spawn();
}

Deno.test("cli: stop, reload and status refuse a planted victim pid; the victim lives", () =>
  withRuntimeDir(async (dir) => {
    const v = victim();
    try {
      const path = `${dir}/serve.pid`;
      // The worst case: the pid file is locked (as if its daemon ran) and
      // names the victim. This process holds the lock.
      const planted = PidFile.acquire(path, { pid: v.pid });
      try {
        const env = { FFINET_RUNTIME_DIR: dir };
        const stop = await cli(["stop", "--pidfile", path, "--timeout", "1000"], env);
        assertEquals(stop.code, 1, stop.stdout);
        assertStringIncludes(stop.stderr, `Cannot stop pid ${v.pid}`);
        assertStringIncludes(stop.stderr, "no signal is sent");
        const reload = await cli(["reload"], env); // the default pid file is the same path
        assertEquals(reload.code, 1);
        assertStringIncludes(reload.stderr, `Cannot reload pid ${v.pid}`);
        const status = await cli(["status", "--pidfile", path], env);
        assertEquals(status.code, 4);
        assert(alive(v.pid), "the victim survived stop and reload");

        // A control socket that answers for another pid is refused too.
        const fake = ControlServer.listen({ path: `${dir}/serve.sock`, handlers: {} });
        try {
          const again = await cli(["stop", "--pidfile", path], env);
          assertEquals(again.code, 1);
          assertStringIncludes(again.stderr, `names pid ${v.pid} but the control socket`);
          assertStringIncludes(again.stderr, `belongs to pid ${Deno.pid}`);
        } finally {
          await fake.close();
        }
        assert(alive(v.pid), "the victim survived");
      } finally {
        planted.release();
      }
      // Unlocked (stale) and naming the victim: not running, nothing signalled.
      Deno.writeTextFileSync(path, `${v.pid}\n`);
      const stale = await cli(["stop", "--pidfile", path]);
      assertEquals(stale.code, 0);
      assertStringIncludes(stale.stdout, `not running (stale pid file ${path}, pid ${v.pid})`);
      assert(alive(v.pid), "the victim survived a stale pid file");
    } finally {
      v.kill("SIGKILL");
      await v.status;
    }
  }));

Deno.test("cli: a symlinked pid file gets the same clean refusal from start, status, stop, reload", () =>
  withRuntimeDir(async (dir) => {
    Deno.writeTextFileSync(`${dir}/real.pid`, "1\n");
    Deno.symlinkSync(`${dir}/real.pid`, `${dir}/link.pid`);
    const link = `${dir}/link.pid`;
    const phrase = `${link} is a symbolic link (refusing to follow it)`;
    const start = await cli([CLI_APP, "--port", String(freePort()), "--pidfile", link]);
    const [status, stop, reload] = await Promise.all([
      cli(["status", "--pidfile", link]),
      cli(["stop", "--pidfile", link]),
      cli(["reload", "--pidfile", link]),
    ]);
    for (
      const [name, r, code] of [
        ["start", start, 1],
        ["status", status, 4],
        ["stop", stop, 1],
        ["reload", reload, 1],
      ] as const
    ) {
      assertEquals(r.code, code, `${name}: ${r.stderr}`);
      assertStringIncludes(r.stderr, phrase, name);
      assert(
        !r.stderr.includes("Uncaught") && !r.stderr.includes("    at "),
        `${name}: ${r.stderr}`,
      );
      assertEquals(r.stderr.trim().split("\n").length, 1, `${name}: one line`);
    }
    assertEquals(Deno.readTextFileSync(`${dir}/real.pid`), "1\n", "the target is untouched");
  }));

Deno.test({
  name: "cli: as root, a pid file owned by another user is refused by every command",
  ignore: Deno.uid() !== 0,
  fn: () =>
    withRuntimeDir(async (dir) => {
      const path = `${dir}/serve.pid`;
      Deno.writeTextFileSync(path, "1\n");
      Deno.chownSync(path, 65534, 65534);
      for (const args of [["stop"], ["status"], ["reload"]]) {
        const r = await cli([...args, "--pidfile", path]);
        assertNotEquals(r.code, 0);
        assertStringIncludes(r.stderr, "is owned by uid 65534, not by uid 0");
      }
    }),
});
if (Deno.uid() !== 0) console.log("skip: the foreign-owner pid file CLI test needs root");

Deno.test("cli: the default pid file and a 0600 control socket live in the private runtime dir", () =>
  withRuntimeDir(async (base) => {
    const dir = `${base}/rt`; // created by the daemon, 0700
    const env = { FFINET_RUNTIME_DIR: dir };
    const port = freePort();
    const seen = new Set<number>();
    try {
      const r = await cli([
        ...daemonArgs(port),
        "--workers",
        "2",
      ], env);
      assertEquals(r.code, 0, r.stderr);
      const sup = Number(r.stdout.trim());
      seen.add(sup);
      childrenOf(sup).forEach((p) => seen.add(p));
      assertEquals(Deno.statSync(dir).mode! & 0o777, 0o700);
      assertEquals(Deno.readTextFileSync(`${dir}/serve.pid`), `${sup}\n`);
      const sock = Deno.lstatSync(`${dir}/serve.sock`);
      assert(sock.isSocket);
      assertEquals(sock.mode! & 0o777, 0o600);

      const st = await cli(["status", "--json"], env);
      assertEquals(st.code, 0, st.stderr);
      const data = JSON.parse(st.stdout);
      assertEquals(data.running, true);
      assertEquals(data.pid, sup);
      assertEquals(data.listen, [`127.0.0.1:${port}`]);
      assertEquals(data.workers.length, 2);
      const before: number[] = data.workers.map((w: { pid: number }) => w.pid);
      for (const w of data.workers) {
        assertEquals(w.state, "listening");
        assert(w.rssBytes > 1_000_000, `rss ${w.rssBytes}`);
        assert(w.cpuMs >= 0 && w.uptimeMs >= 0);
        assertEquals(w.restarts, 0);
        assertEquals(w.droppedLines, 0);
      }
      const rl = await cli(["reload"], env);
      assertEquals(rl.code, 0, rl.stderr);
      assertEquals(rl.stdout.trim(), `reloaded (pid ${sup})`);
      const after = JSON.parse((await cli(["status", "--json"], env)).stdout);
      const now: number[] = after.workers.map((w: { pid: number }) => w.pid);
      now.forEach((p) => seen.add(p));
      for (const p of now) assert(!before.includes(p), "every worker was replaced");
      assertEquals((await httpGet(port)).body, "Hello, World!");

      const stop = await cli(["stop"], env);
      assertEquals(stop.code, 0, stop.stderr);
      assertEquals(stop.stdout.trim(), `stopped (pid ${sup})`);
      for (const p of seen) await waitUntil(() => !alive(p), 5000, `pid ${p} to exit`);
      assertEquals(
        [...Deno.readDirSync(dir)].map((e) => e.name),
        [],
        "pid file and socket removed",
      );
    } finally {
      killAll(seen);
    }
  }));

Deno.test("cli: a runtime dir others can write is refused before anything starts", () =>
  withRuntimeDir(async (base) => {
    const dir = `${base}/wide`;
    Deno.mkdirSync(dir);
    Deno.chmodSync(dir, 0o777);
    const r = await cli([
      ...daemonArgs(freePort()),
    ], {
      FFINET_RUNTIME_DIR: dir,
    });
    assertEquals(r.code, 1);
    assertStringIncludes(r.stderr, `Cannot use runtime directory: ${dir} has mode 0777`);
    assertEquals([...Deno.readDirSync(dir)], []);
  }));

Deno.test("cli: --daemon passes APP (a file: URL), extra Deno flags and app arguments on", () =>
  withRuntimeDir(async (dir) => {
    const env = { FFINET_RUNTIME_DIR: dir };
    const port = freePort();
    const seen = new Set<number>();
    try {
      const r = await cli([
        ...daemonArgs(port, [], new URL(`file://${CLI_APP}`).href),
        "--workers",
        "1",
        `--allow=write=${dir}`,
        "--deno-flag=--v8-flags=--max-old-space-size=256",
        "--",
        "a1",
        "--b",
        "x y",
      ], env);
      assertEquals(r.code, 0, r.stderr);
      const sup = Number(r.stdout.trim());
      seen.add(sup);
      const worker = childrenOf(sup)[0]!;
      seen.add(worker);
      assertEquals(JSON.parse((await httpGet(port, "/args")).body), ["a1", "--b", "x y"]);
      const argv = procRead(`/proc/${worker}/cmdline`).split("\0");
      for (
        const flag of [
          "--allow-net",
          "--allow-env",
          "--allow-read",
          "--allow-ffi",
          `--allow-write=${dir}`,
          "--v8-flags=--max-old-space-size=256",
        ]
      ) assert(argv.includes(flag), `worker argv lacks ${flag}: ${argv.join(" ")}`);
      assert(!argv.includes("--allow-run") && !argv.includes("--allow-all"), argv.join(" "));
      const stop = await cli(["stop"], env);
      assertEquals(stop.code, 0, stop.stderr);
      for (const p of seen) await waitUntil(() => !alive(p), 5000, `pid ${p} to exit`);
    } finally {
      killAll(seen);
    }
  }));
