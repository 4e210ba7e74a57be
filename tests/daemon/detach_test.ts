/**
 * `daemonize()` / `enterDaemon()` with real processes: a daemon that reports
 * ready, and the ways start-up can fail (ERRNO, uncaught error, silent exit,
 * timeout), each reported by the launcher with the daemon's reason.
 */
import { assert, assertEquals, assertMatch, assertStringIncludes } from "@std/assert";
import { closeFd, listOpenFds, pipe } from "../../ffi/fd.ts";
import {
  alive,
  killAll,
  procFds,
  procLink,
  procRead,
  procStat,
  waitUntil,
} from "./fixtures/helpers.ts";

const APP = new URL("./fixtures/daemon_app.ts", import.meta.url).pathname;

async function launch(mode: string, report: string) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", APP, mode, report],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("detach: the daemon runs in its own session, in /, with its umask, once ready", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ffinet-detach-" });
  const report = `${dir}/report.json`;
  let pid = 0;
  // An fd the launcher inherits (not close-on-exec) must not reach the daemon.
  const [leakR, leakW] = pipe({ cloexec: false });
  const leaked = listOpenFds().get(leakR)!;
  try {
    const t0 = Date.now();
    const r = await launch("ok", report);
    closeFd(leakR);
    closeFd(leakW);
    assertEquals(r.code, 0, r.stderr);
    const m = /^pid (\d+)$/m.exec(r.stdout);
    if (m === null) throw new Error(`no pid in ${r.stdout}`);
    pid = Number(m[1]);
    assert(Date.now() - t0 < 10_000);
    // The launcher returned only after READY=1, so the report is written.
    const info = JSON.parse(await Deno.readTextFile(report));
    assertEquals(info.pid, pid);
    assertEquals(info.sid, pid, "session leader");
    assertEquals(info.cwd, "/");
    assertEquals(info.marker, "1");
    assertMatch(info.notifySocketBefore, /^\/.*ffinet-daemonize-.*\/notify$/);
    await waitUntil(
      async () => {
        try {
          await Deno.stat(report + ".ready");
          return true;
        } catch {
          return false;
        }
      },
      2000,
      "the ready report",
    );
    const ready = JSON.parse(await Deno.readTextFile(report + ".ready"));
    assertEquals(ready.sent, true);
    assertEquals(ready.notifySocketAfter, null, "the launcher's socket is forgotten");
    // From the outside: own session and group, no controlling terminal, umask.
    const stat = procStat(pid); // [state, ppid, pgrp, session, tty_nr, ...]
    assertEquals(Number(stat[2]), pid, "process group leader");
    assertEquals(Number(stat[3]), pid, "session leader");
    assertEquals(Number(stat[4]), 0, "no controlling terminal");
    assertStringIncludes(procRead(`/proc/${pid}/status`), "Umask:\t0027");
    assertEquals(procLink(`/proc/${pid}/cwd`), "/");
    const fds = procFds(pid);
    assertEquals(fds.filter((f) => f.fd <= 2).map((f) => f.target), Array(3).fill("/dev/null"));
    for (const f of fds) {
      if (f.fd > 2) assert(f.cloexec, `fd ${f.fd} (${f.target}) is close-on-exec`);
    }
    assertMatch(leaked, /^pipe:/);
    assert(!fds.some((f) => f.target === leaked), "the launcher's inherited pipe did not leak");
    // The notify socket's directory is gone.
    const leftovers = [...Deno.readDirSync("/tmp")].filter((e) =>
      e.name.startsWith("ffinet-daemonize-") &&
      info.notifySocketBefore.startsWith(`/tmp/${e.name}/`)
    );
    assertEquals(leftovers, []);
    Deno.kill(pid, "SIGTERM");
    await waitUntil(() => !alive(pid), 5000, "the daemon to exit");
  } finally {
    for (const fd of [leakR, leakW]) {
      try {
        closeFd(fd);
      } catch { /* closed above */ }
    }
    if (pid) killAll([pid]);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("detach: ERRNO from notifyFailure makes the launcher fail with the reason", async () => {
  const r = await launch("errno", "/dev/null");
  assertEquals(r.code, 1);
  assertStringIncludes(
    r.stderr,
    "failed: Cannot bind: EADDRINUSE (Address already in use) [127.0.0.1:1]",
  );
});

Deno.test("detach: an uncaught error before readiness is reported by the launcher", async () => {
  const r = await launch("throw", "/dev/null");
  assertEquals(r.code, 1);
  assertStringIncludes(r.stderr, "failed: Cannot configure: the fixture was told to throw");
});

Deno.test("detach: a daemon that exits silently makes the launcher report its exit code", async () => {
  const r = await launch("exit", "/dev/null");
  assertEquals(r.code, 1);
  assertMatch(r.stderr, /failed: the daemon \(pid \d+\) exited with code 3 before it was ready/);
});

Deno.test("detach: a daemon that never reports is terminated after the timeout", async () => {
  const t0 = Date.now();
  const r = await launch("hang", "/dev/null");
  assertEquals(r.code, 1);
  const m = /failed: the daemon \(pid (\d+)\) did not report readiness within 800 ms/.exec(
    r.stderr,
  );
  if (m === null) throw new Error(`no timeout message in ${r.stderr}`);
  assert(Date.now() - t0 < 8000);
  assert(!alive(Number(m[1])), "the hung daemon was terminated");
});
