/**
 * Integers are validated, never wrapped: ids, fds, backlog, ports, scope
 * ids, flow info, buffer sizes, linger and timeouts throw a RangeError that
 * names the argument, before any system call.
 */
import { evalChild, spawnsDeno } from "./_child.ts";
import { assert, assertEquals, assertStringIncludes, assertThrows } from "@std/assert";
import * as sys from "../../ffi/syscalls.ts";
import { encodeSockaddr } from "../../ffi/sockaddr.ts";
import { Socket } from "../../ffi/socket.ts";
import { LINGER_MAX_SECONDS, setSocketOption, TIMEOUT_MAX_MS } from "../../ffi/sockopt.ts";
import {
  dup2,
  ftruncate,
  getrlimit,
  getsid,
  kill,
  openFile,
  pidfdOpen,
  umask,
} from "../../ffi/process.ts";
import { eventfd } from "../../ffi/fd.ts";
import { withFdCheck } from "../_helpers.ts";

const NOT_INTEGERS = [NaN, Infinity, -Infinity, 0.5, 65534.9];

/** Assert a RangeError that names `name` in a "Cannot <call>" message. */
function assertNamed(fn: () => unknown, call: string, name: string, label: string): void {
  const e = assertThrows(fn, RangeError, undefined, label);
  assert(e.message.startsWith(`Cannot ${call}`), `${label}: ${e.message}`);
  assertStringIncludes(e.message, name, label);
}

Deno.test(
  spawnsDeno("validate: setuid/setgid/setgroups refuse what used to wrap to 0, before the call"),
  async () => {
    // In a child process: were a check missing, 65534.9 would really drop
    // this test runner's privileges.
    const url = new URL("../../ffi/process.ts", import.meta.url).href;
    const script = `
    import { setgid, setgroups, setuid, getuid } from "${url}";
    const bad = [2 ** 32, 2 ** 32 + 1, NaN, Number("nobody"), 65534.9, -1, -0.5, Infinity,
      0xffffffff, 2 ** 53];
    const out = [];
    const uid = getuid();
    for (const v of bad) {
      for (const [name, fn] of [["uid", () => setuid(v)], ["gid", () => setgid(v)],
        ["gids[1]", () => setgroups([0, v])]]) {
        try { fn(); out.push("accepted " + name + " " + v); }
        catch (e) { out.push(e.constructor.name + ": " + e.message); }
      }
    }
    try { setgroups(new Array(65537).fill(0)); out.push("accepted 65537 groups"); }
    catch (e) { out.push(e.constructor.name + ": " + e.message); }
    out.push("uid " + uid + " -> " + getuid());
    console.log(JSON.stringify(out));
  `;
    const { stdout } = await evalChild(script);
    const lines: string[] = JSON.parse(stdout);
    const last = lines.pop()!;
    const [before, after] = last.slice(4).split(" -> ");
    assertEquals(after, before, "the uid never changed");
    assertEquals(lines.length, 10 * 3 + 1);
    for (const line of lines) {
      assert(line.startsWith("RangeError: Cannot set"), line);
      assert(
        / (uid|gid|gids\[1\]) .* is not an integer from 0 to 4294967294|NGROUPS_MAX/.test(line),
        line,
      );
    }
  },
);

Deno.test("validate: backlog, port, scope id and flow info", () =>
  withFdCheck(() => {
    using s = Socket.create("inet", "stream");
    s.bind({ family: "inet", address: "127.0.0.1", port: 0 });
    for (const b of [-1, -(2 ** 31), 2 ** 31, ...NOT_INTEGERS]) {
      assertNamed(() => s.listen(b), "listen", "backlog", `Socket.listen(${b})`);
      assertNamed(() => sys.listen(s.fd, b), "listen", "backlog", `sys.listen(${b})`);
    }
    assertEquals(s.getOption("acceptConnections"), false, "no refused backlog reached listen()");
    s.listen(0);
    for (const port of [-1, 65536, 2 ** 32, ...NOT_INTEGERS]) {
      assertNamed(
        () => encodeSockaddr({ family: "inet", address: "127.0.0.1", port }),
        "encode address",
        "port",
        `port ${port}`,
      );
      assertNamed(
        () => encodeSockaddr({ family: "inet6", address: "::1", port }),
        "encode address",
        "port",
        `port6 ${port}`,
      );
    }
    for (const v of [-1, 2 ** 32, 2 ** 32 + 1, ...NOT_INTEGERS]) {
      assertNamed(
        () => encodeSockaddr({ family: "inet6", address: "fe80::1", port: 1, scopeId: v }),
        "encode address",
        "scopeId",
        `scopeId ${v}`,
      );
      assertNamed(
        () => encodeSockaddr({ family: "inet6", address: "::1", port: 1, flowinfo: v }),
        "encode address",
        "flowinfo",
        `flowinfo ${v}`,
      );
    }
    const max = encodeSockaddr({
      family: "inet6",
      address: "::1",
      port: 65535,
      scopeId: 2 ** 32 - 1,
      flowinfo: 0,
    });
    assertEquals(new DataView(max.buffer).getUint32(24, true), 2 ** 32 - 1);
  }));

Deno.test("validate: linger, timeouts and buffer sizes are checked, not wrapped", () =>
  withFdCheck(() => {
    using s = Socket.create("inet", "stream", { nonblocking: false });
    for (const seconds of [2 ** 32, 2 ** 31, -1, ...NOT_INTEGERS]) {
      assertNamed(
        () => s.setOption("linger", { seconds }),
        "set socket option linger",
        "seconds",
        `linger ${seconds}`,
      );
    }
    s.setOption("linger", { seconds: LINGER_MAX_SECONDS });
    assertEquals(s.getOption("linger"), { seconds: LINGER_MAX_SECONDS });
    for (const ms of [2 ** 64, 1.8e22, TIMEOUT_MAX_MS + 1, -1, NaN, Infinity]) {
      assertNamed(
        () => s.setOption("receiveTimeout", ms),
        "set socket option receiveTimeout",
        "ms",
        `timeout ${ms}`,
      );
    }
    // A fraction just under a second never makes tv_usec reach 1,000,000 (EDOM).
    s.setOption("receiveTimeout", 999.9999);
    assertEquals(s.getOption("receiveTimeout"), 1000);
    s.setOption("sendTimeout", 1500.25);
    assert(Math.abs(s.getOption("sendTimeout") - 1500.25) < 20); // the kernel keeps jiffies
    for (const size of [-1, 2 ** 31, 2 ** 32, ...NOT_INTEGERS]) {
      assertNamed(
        () => s.setOption("receiveBufferSize", size),
        "set socket option receiveBufferSize",
        "value",
        `rcvbuf ${size}`,
      );
      assertNamed(
        () => setSocketOption(s.fd, "sendBufferSize", size),
        "set socket option sendBufferSize",
        "value",
        `sndbuf ${size}`,
      );
    }
    for (const fd of [NaN, 0.5, 2 ** 32]) {
      assertNamed(() => setSocketOption(fd, "noDelay", true), "setsockopt", "fd", `fd ${fd}`);
    }
  }));

Deno.test("validate: fds, pids, signals, modes and lengths in process calls", () => {
  for (const fd of [-1, 2 ** 31, 2 ** 32, ...NOT_INTEGERS]) {
    assertNamed(() => new Socket(fd), "wrap socket", "fd", `Socket(${fd})`);
  }
  // A negative fd reaches the kernel (EBADF); what is not an int never does.
  for (const fd of [2 ** 31, 2 ** 32, -(2 ** 31) - 1, ...NOT_INTEGERS]) {
    assertNamed(() => dup2(fd, 100), "dup2", "oldFd", `dup2 old ${fd}`);
    assertNamed(() => dup2(0, fd), "dup2", "newFd", `dup2 new ${fd}`);
  }
  // kill(NaN) used to be kill(0): the whole process group.
  for (const pid of [NaN, 0.5, 2 ** 31, 2 ** 32, Infinity]) {
    assertNamed(() => kill(pid, 0), "kill", "pid", `kill pid ${pid}`);
    assertNamed(() => getsid(pid), "getsid", "pid", `getsid ${pid}`);
    assertNamed(() => pidfdOpen(pid), "pidfd_open", "pid", `pidfd_open ${pid}`);
  }
  for (const signal of [-1, 65, NaN, 0.5, 2 ** 32]) {
    assertNamed(() => kill(Deno.pid, signal), "kill", "signal", `signal ${signal}`);
  }
  for (const mask of [-1, 0o1000, NaN, 0.5]) {
    assertNamed(() => umask(mask), "umask", "mask", `umask ${mask}`);
  }
  for (const mode of [-1, 0o10000, NaN, 0.5]) {
    assertNamed(() => openFile("/dev/null", 0, mode), "open", "mode", `mode ${mode}`);
  }
  for (const length of [-1, 0.5, NaN, 2 ** 53]) {
    assertNamed(() => ftruncate(0, length), "ftruncate", "length", `ftruncate ${length}`);
  }
  for (const initial of [-1, 2 ** 32, NaN, 0.5]) {
    assertNamed(() => eventfd({ initial }), "eventfd", "initval", `eventfd ${initial}`);
  }
  assertNamed(() => getrlimit(NaN), "getrlimit", "resource", "getrlimit NaN");
  assertNamed(
    () => Socket.create("inet", "stream", { protocol: 0.5 }),
    "create socket",
    "protocol",
    "protocol 0.5",
  );
});
