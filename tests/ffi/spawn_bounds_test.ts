/**
 * ffi/spawn.ts under the memory-safety rule: every pid, fd and signal is
 * checked before a call (RangeError naming the call and the argument, never
 * a wrap into another process's pid or a bit outside the sigset), options
 * are validated before any fd is taken, and names are looked up as own
 * properties only.
 */
import { assertEquals, assertThrows } from "@std/assert";
import {
  blockedSignals,
  blockSignals,
  fdHungUp,
  pidfdOpenAny,
  pidfdSendSignal,
  signalNumber,
  spawn,
  unblockSignals,
  waitPidfd,
} from "../../ffi/spawn.ts";
import { readProcFile } from "../../ffi/process.ts";
import { close } from "../../ffi/syscalls.ts";
import { withFdCheck } from "../_helpers.ts";

const ENV = { PATH: "/usr/bin:/bin" };
/** Numbers that must never reach an `int` parameter. */
const NOT_INTS = [-0.5, 0.5, NaN, Infinity, -Infinity, 2 ** 31, 2 ** 32, 2 ** 53];

Deno.test("spawn bounds: signals are 0..64 or own names; sigsets take 1..64 only", () => {
  for (const bad of [-1, 65, 1.5, NaN, Infinity, 2 ** 32 + 15]) {
    assertThrows(() => signalNumber(bad), RangeError, "not a signal number");
  }
  for (const name of ["toString", "__proto__", "constructor", "hasOwnProperty", "SIGFOO"]) {
    assertThrows(() => signalNumber(name as Deno.Signal), RangeError, "unknown signal");
  }
  assertEquals(signalNumber("SIGTERM"), 15);
  assertEquals(signalNumber(0), 0);
  const before = blockedSignals();
  // Signal 0 has no bit in a sigset (it would be byte -1); 65 is past _NSIG.
  assertThrows(() => blockSignals([0]), RangeError, "Cannot pthread_sigmask: signal 0");
  assertThrows(() => unblockSignals([0]), RangeError, "Cannot pthread_sigmask: signal 0");
  for (const bad of [65, -1]) {
    assertThrows(() => blockSignals([bad]), RangeError, `signal ${bad}`);
    assertThrows(() => unblockSignals([bad]), RangeError, `signal ${bad}`);
  }
  assertThrows(() => blockSignals(["toString" as Deno.Signal]), RangeError, "unknown signal");
  assertEquals(blockedSignals(), before, "a refused call changed the signal mask");
});

Deno.test("spawn bounds: pids and fds are ints, never wrapped", () =>
  withFdCheck(() => {
    // 2^32 + our pid would wrap to our own pid in an i32 parameter.
    for (const bad of [0, -1, ...NOT_INTS, 2 ** 32 + Deno.pid]) {
      assertThrows(() => pidfdOpenAny(bad), RangeError, "pidfd_open");
    }
    const pidfd = pidfdOpenAny(Deno.pid);
    try {
      for (const bad of NOT_INTS) {
        assertThrows(() => pidfdSendSignal(bad, 0), RangeError, "pidfd_send_signal");
        assertThrows(() => waitPidfd(bad), RangeError, "waitid");
        assertThrows(() => fdHungUp(bad), RangeError, "poll");
      }
      assertThrows(() => pidfdSendSignal(2 ** 32 + pidfd, 0), RangeError, "pidfd_send_signal");
      assertThrows(() => pidfdSendSignal(pidfd, 65), RangeError, "signal");
      assertThrows(
        () => pidfdSendSignal(pidfd, "toString" as Deno.Signal),
        RangeError,
        "unknown signal",
      );
      assertEquals(pidfdSendSignal(pidfd, 0), true, "signal 0 only checks that we exist");
    } finally {
      close(pidfd);
    }
  }));

Deno.test("spawn bounds: bad options are refused before any fd is taken or any child starts", () =>
  withFdCheck(() => {
    const refuse = (options: Record<string, unknown>, type: typeof Error, text: string) =>
      assertThrows(
        () =>
          spawn({ path: "true", args: [], env: ENV, ...options } as Parameters<typeof spawn>[0]),
        type,
        text,
      );
    for (const bad of [-1, ...NOT_INTS]) {
      refuse({ fds: [0, bad] }, RangeError, "fds[1]");
    }
    refuse({ stdout: "pipe" }, TypeError, "stdout");
    refuse({ stderr: 1 }, TypeError, "stderr");
    refuse({ args: [1] }, TypeError, "argument 1");
    refuse({ env: { A: 1 } }, TypeError, "the value of A");
    refuse({ argv0: "a\0b" }, TypeError, "NUL");
    refuse({ cwd: "/tmp\0x" }, TypeError, "NUL");
    // Nothing was started: no child of ours exists.
    const children = readProcFile(`/proc/self/task/${Deno.pid}/children`).trim();
    assertEquals(children, "", "a refused spawn started a child");
  }));
