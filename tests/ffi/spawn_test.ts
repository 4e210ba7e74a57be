/**
 * posix_spawn through FFI: fd mapping with nothing else leaking, reset
 * signal mask and dispositions, a new session, pidfd reaping without
 * zombies, exit codes and signals, argument validation.
 */
import { assert, assertEquals, assertThrows } from "@std/assert";
import { skipped, SPAWN_EXEC_ERROR_SKIP } from "./_emulation.ts";
import { ErrnoError } from "../../ffi/errno.ts";
import { F, O } from "../../ffi/constants.ts";
import { listOpenFds, pipe } from "../../ffi/fd.ts";
import { openFile, readProcFile } from "../../ffi/process.ts";
import {
  blockedSignals,
  blockSignals,
  type ChildExit,
  fdHungUp,
  pidfdSendSignal,
  spawn,
  type SpawnedChild,
  unblockSignals,
  waitPidfd,
} from "../../ffi/spawn.ts";
import { close, fcntl, read } from "../../ffi/syscalls.ts";

const ENV = { PATH: "/usr/bin:/bin" };

async function reap(child: SpawnedChild, timeoutMs = 5000): Promise<ChildExit> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const exit = waitPidfd(child.pidfd);
    if (exit !== null) {
      close(child.pidfd);
      return exit;
    }
    if (Date.now() > end) throw new Error(`child ${child.pid} did not exit in ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function readAll(fd: number): string {
  const buf = new Uint8Array(65536);
  let out = "";
  for (;;) {
    const n = read(fd, buf);
    if (n <= 0) break;
    out += new TextDecoder().decode(buf.subarray(0, n));
  }
  return out;
}

async function waitFor(cond: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 5));
  }
}

Deno.test("spawn: maps fds to 3, 4 and nothing else reaches the child", async () => {
  const [r1, w1] = pipe();
  const [r2, w2] = pipe();
  // A deliberately inheritable fd (no FD_CLOEXEC): it must not leak either.
  const leaky = fcntl(openFile("/dev/null", O.RDONLY | O.CLOEXEC), F.DUPFD, 10);
  const child = spawn({ path: "sleep", args: ["5"], env: ENV, fds: [r1, r2] });
  try {
    await new Promise((r) => setTimeout(r, 50)); // it exec'd sleep by now
    const fds = listOpenFds(child.pid);
    assertEquals([...fds.keys()].sort((a, b) => a - b), [0, 1, 2, 3, 4], [...fds].join(" "));
    assertEquals(fds.get(0), "/dev/null");
    const mine = listOpenFds();
    assertEquals(fds.get(3), mine.get(r1), "fd 3 is the first mapped pipe");
    assertEquals(fds.get(4), mine.get(r2), "fd 4 is the second mapped pipe");
    assertEquals(
      readProcFile(`/proc/${child.pid}/stat`).split(") ")[1]!.split(" ")[3],
      String(child.pid),
      "session leader (setsid)",
    );
  } finally {
    pidfdSendSignal(child.pidfd, "SIGKILL");
    await reap(child);
    for (const fd of [r1, w1, r2, w2, leaky]) close(fd);
  }
});

Deno.test("spawn: the child gets an empty signal mask and default dispositions", async () => {
  blockSignals(["SIGUSR2", "SIGHUP"]);
  let child: SpawnedChild | undefined;
  try {
    assert(blockedSignals().includes(12), "SIGUSR2 is blocked here");
    child = spawn({
      path: "grep",
      args: ["-E", "^Sig(Blk|Ign)", "/proc/self/status"],
      env: ENV,
      stdout: "piped",
    });
  } finally {
    unblockSignals(["SIGUSR2", "SIGHUP"]);
  }
  const exit = await reap(child);
  const text = readAll(child.stdout!);
  close(child.stdout!);
  assertEquals(exit.code, 0);
  assert(/SigBlk:\s*0+\n/.test(text), text);
  assert(/SigIgn:\s*0+\n/.test(text), text);
});

Deno.test("spawn: an exited child is a zombie until waitPidfd reaps it; none stays", async () => {
  const child = spawn({ path: "true", args: [], env: ENV });
  await waitFor(() => fdHungUp(child.pidfd), 5000); // pidfd readable = exited
  const state = readProcFile(`/proc/${child.pid}/stat`).split(") ")[1]!.split(" ")[0];
  assertEquals(state, "Z", "not reaped by anyone else (Deno reaps only Deno.Command children)");
  assertEquals(await reap(child), { code: 0, signal: null, signalNumber: null });
  assertThrows(() => readProcFile(`/proc/${child.pid}/stat`), ErrnoError, "ENOENT");
});

Deno.test("spawn: exit codes, signals, pidfd_send_signal after exit", async () => {
  const a = spawn({ path: "sh", args: ["-c", "exit 7"], env: ENV });
  assertEquals((await reap(a)).code, 7);
  const b = spawn({ path: "sleep", args: ["5"], env: ENV });
  assert(pidfdSendSignal(b.pidfd, "SIGTERM"));
  await waitFor(() => fdHungUp(b.pidfd), 5000);
  assertEquals(pidfdSendSignal(b.pidfd, "SIGTERM"), true, "a zombie can still be signalled");
  const exit = waitPidfd(b.pidfd)!;
  assertEquals(exit, { code: 143, signal: "SIGTERM", signalNumber: 15 });
  assertEquals(pidfdSendSignal(b.pidfd, "SIGTERM"), false, "ESRCH once reaped");
  close(b.pidfd);
});

Deno.test("spawn: stdout and stderr pipes, argv and envp", async () => {
  const c = spawn({
    path: "/bin/sh",
    args: ["-c", 'echo "$0|$1|$FOO"; echo oops >&2', "x y", "é"],
    argv0: "custom",
    env: { ...ENV, FOO: "bar=baz" },
    stdout: "piped",
    stderr: "piped",
  });
  await reap(c);
  assertEquals(readAll(c.stdout!), "x y|é|bar=baz\n");
  assertEquals(readAll(c.stderr!), "oops\n");
  close(c.stdout!);
  close(c.stderr!);
});

Deno.test("spawn: refuses NUL bytes and bad fds before spawning; reports a missing program", () => {
  const before = listOpenFds().size;
  assertThrows(() => spawn({ path: "true", args: ["a\0b"], env: ENV }), TypeError, "NUL");
  assertThrows(() => spawn({ path: "true", args: [], env: { "A=B": "1" } }), TypeError);
  assertThrows(() => spawn({ path: "true", args: [], env: { A: "\0" } }), TypeError, "NUL");
  assertThrows(() => spawn({ path: "true", args: [], env: ENV, fds: [-1] }), RangeError);
  if (!skipped("spawn: a missing program is ENOENT from posix_spawn", SPAWN_EXEC_ERROR_SKIP)) {
    assertThrows(() => spawn({ path: "/nonexistent/x", args: [], env: ENV }), ErrnoError, "ENOENT");
  }
  assertThrows(() => spawn({ path: "no-such-program-xyz", args: [], env: ENV }), Error, "PATH");
  assertEquals(listOpenFds().size, before, "no fd left behind");
});

Deno.test("fdHungUp: a lifeline pipe hangs up when its writer closes", () => {
  const [r, w] = pipe();
  assertEquals(fdHungUp(r), false);
  close(w);
  assertEquals(fdHungUp(r), true);
  close(r);
  assertThrows(() => fdHungUp(r), ErrnoError, "EBADF");
  assertThrows(() => fdHungUp(-1), RangeError, "poll");
  assertThrows(() => waitPidfd(1.5), RangeError, "waitid");
  assertThrows(() => pidfdSendSignal(3, "SIGNOPE" as Deno.Signal), RangeError, "unknown signal");
});
