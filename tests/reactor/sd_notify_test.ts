import { assert, assertEquals, assertThrows } from "@std/assert";
import {
  formatNotifyState,
  listenFds,
  notify,
  notifySocketAddress,
  parseListenFds,
  parseWatchdog,
  SD_LISTEN_FDS_START,
  watchdogInterval,
} from "../../reactor/sd_notify.ts";
import { ErrnoError } from "../../ffi/errno.ts";
import { Socket } from "../../ffi/socket.ts";
import { waitFor, withFdCheck } from "../_helpers.ts";

const decoder = new TextDecoder();
const VARS = [
  "NOTIFY_SOCKET",
  "WATCHDOG_USEC",
  "WATCHDOG_PID",
  "LISTEN_PID",
  "LISTEN_FDS",
  "LISTEN_FDNAMES",
];

/** Run `fn` with `vars` set (undefined: unset) and restore the environment after. */
async function withEnv(
  vars: Record<string, string | undefined>,
  fn: () => unknown,
): Promise<void> {
  const saved = new Map(VARS.map((k) => [k, Deno.env.get(k)]));
  try {
    for (const k of VARS) Deno.env.delete(k);
    for (const [k, v] of Object.entries(vars)) if (v !== undefined) Deno.env.set(k, v);
    await fn();
  } finally {
    for (const [k, v] of saved) v === undefined ? Deno.env.delete(k) : Deno.env.set(k, v);
  }
}

/** Receive one datagram (5 s at most). */
async function receiveOne(sock: Socket): Promise<string> {
  const buf = new Uint8Array(4096);
  let got: string | null = null;
  await waitFor(
    () => {
      const n = sock.read(buf);
      if (n !== null) got = decoder.decode(buf.subarray(0, n));
      return got !== null;
    },
    5000,
    "a notification",
  );
  return got!;
}

Deno.test("notify returns false when NOTIFY_SOCKET is unset or empty", () =>
  withEnv({}, async () => {
    await withFdCheck(() => {
      assertEquals(notify("READY=1"), false);
      Deno.env.set("NOTIFY_SOCKET", "");
      assertEquals(notify({ READY: "1" }), false);
    });
  }));

Deno.test("notify sends READY, STATUS and STOPPING to a path NOTIFY_SOCKET", async () => {
  const dir = Deno.makeTempDirSync();
  const path = `${dir}/notify`;
  try {
    await withEnv({ NOTIFY_SOCKET: path }, () =>
      withFdCheck(async () => {
        using sink = Socket.create("unix", "dgram");
        sink.bind({ family: "unix", path });
        assert(notify("READY=1"));
        assertEquals(await receiveOne(sink), "READY=1");
        assert(notify({ STATUS: "serving 3 clients", MAINPID: Deno.pid }));
        assertEquals(await receiveOne(sink), `STATUS=serving 3 clients\nMAINPID=${Deno.pid}`);
        assert(notify("WATCHDOG=1"));
        assertEquals(await receiveOne(sink), "WATCHDOG=1");
        assert(notify({ STOPPING: "1" }, { unsetEnvironment: true }));
        assertEquals(await receiveOne(sink), "STOPPING=1");
        assertEquals(Deno.env.get("NOTIFY_SOCKET"), undefined);
        assertEquals(notify("READY=1"), false);
      }));
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("notify reaches an abstract @name NOTIFY_SOCKET", async () => {
  const name = `ffinet-test-notify-${Deno.pid}-${crypto.randomUUID()}`;
  await withEnv({ NOTIFY_SOCKET: `@${name}` }, () =>
    withFdCheck(async () => {
      using sink = Socket.create("unix", "dgram");
      sink.bind({ family: "unix", path: `\0${name}` });
      assert(notify({ READY: "1", STATUS: "up" }));
      assertEquals(await receiveOne(sink), "READY=1\nSTATUS=up");
      // The explicit socket option wins over the environment.
      Deno.env.set("NOTIFY_SOCKET", "/nonexistent/socket");
      assert(notify("STOPPING=1", { socket: `@${name}` }));
      assertEquals(await receiveOne(sink), "STOPPING=1");
    }));
});

Deno.test("notify throws for a socket nobody listens on, without leaking its fd", async () => {
  const dir = Deno.makeTempDirSync();
  try {
    await withEnv({ NOTIFY_SOCKET: `${dir}/absent` }, () =>
      withFdCheck(() => {
        const e = assertThrows(() => notify("READY=1"), ErrnoError);
        assertEquals(e.code, "ENOENT");
        assertThrows(
          () => notify("READY=1", { socket: `@ffinet-nobody-${crypto.randomUUID()}` }),
          ErrnoError,
          "ECONNREFUSED",
        );
      }));
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("notify rejects unsupported addresses and malformed states", () => {
  assertEquals(notifySocketAddress("/run/systemd/notify"), {
    family: "unix",
    path: "/run/systemd/notify",
  });
  assertEquals(notifySocketAddress("@abc"), { family: "unix", path: "\0abc" });
  assertThrows(() => notifySocketAddress("vsock:2:1234"), TypeError, "unsupported NOTIFY_SOCKET");
  assertThrows(() => notifySocketAddress("relative"), TypeError);
  assertThrows(() => notifySocketAddress("@"), TypeError);
  assertThrows(() => notify("READY=1", { socket: "vsock:2:1" }), TypeError);
  assertEquals(formatNotifyState({ READY: 1, STATUS: "a=b" }), "READY=1\nSTATUS=a=b");
  assertEquals(formatNotifyState("READY=1\nSTATUS=x"), "READY=1\nSTATUS=x");
  assertThrows(() => formatNotifyState({ STATUS: "two\nlines" }), TypeError, "newline");
  assertThrows(() => formatNotifyState({ "A=B": "1" }), TypeError, "invalid variable name");
  assertThrows(() => formatNotifyState({ "": "1" }), TypeError, "invalid variable name");
});

Deno.test("parseWatchdog: WATCHDOG_USEC in ms, WATCHDOG_PID must match", () => {
  assertEquals(parseWatchdog({}, 10), null);
  assertEquals(parseWatchdog({ WATCHDOG_USEC: "3000000" }, 10), 3000);
  assertEquals(parseWatchdog({ WATCHDOG_USEC: "1500" }, 10), 1.5);
  assertEquals(parseWatchdog({ WATCHDOG_USEC: "3000000", WATCHDOG_PID: "10" }, 10), 3000);
  assertEquals(parseWatchdog({ WATCHDOG_USEC: "3000000", WATCHDOG_PID: "11" }, 10), null);
  assertEquals(parseWatchdog({ WATCHDOG_USEC: "3000000", WATCHDOG_PID: "x" }, 10), null);
  assertEquals(parseWatchdog({ WATCHDOG_USEC: "0" }, 10), null);
  assertEquals(parseWatchdog({ WATCHDOG_USEC: "-5" }, 10), null);
  assertEquals(parseWatchdog({ WATCHDOG_USEC: "12abc" }, 10), null);
  assertEquals(parseWatchdog({ WATCHDOG_USEC: "" }, 10), null);
});

Deno.test("watchdogInterval reads this process's environment", () =>
  withEnv({ WATCHDOG_USEC: "20000000", WATCHDOG_PID: String(Deno.pid) }, () => {
    assertEquals(watchdogInterval(), 20000);
    Deno.env.set("WATCHDOG_PID", String(Deno.pid + 1));
    assertEquals(watchdogInterval(), null);
    Deno.env.delete("WATCHDOG_PID");
    assertEquals(watchdogInterval(), 20000);
    Deno.env.delete("WATCHDOG_USEC");
    assertEquals(watchdogInterval(), null);
  }));

Deno.test("parseListenFds: fds from 3 for our pid, with names", () => {
  assertEquals(SD_LISTEN_FDS_START, 3);
  assertEquals(parseListenFds({}, 7), []);
  assertEquals(parseListenFds({ LISTEN_PID: "8", LISTEN_FDS: "2" }, 7), []);
  assertEquals(parseListenFds({ LISTEN_PID: "7", LISTEN_FDS: "0" }, 7), []);
  assertEquals(parseListenFds({ LISTEN_PID: "7", LISTEN_FDS: "2" }, 7), [
    { fd: 3, name: "unknown" },
    { fd: 4, name: "unknown" },
  ]);
  assertEquals(
    parseListenFds({ LISTEN_PID: "7", LISTEN_FDS: "3", LISTEN_FDNAMES: "http:https:" }, 7),
    [{ fd: 3, name: "http" }, { fd: 4, name: "https" }, { fd: 5, name: "unknown" }],
  );
  assertThrows(
    () => parseListenFds({ LISTEN_PID: "7", LISTEN_FDS: "2", LISTEN_FDNAMES: "a" }, 7),
    RangeError,
    "names 1 fds, LISTEN_FDS says 2",
  );
  assertThrows(() => parseListenFds({ LISTEN_PID: "7", LISTEN_FDS: "x" }, 7), RangeError);
  assertThrows(() => parseListenFds({ LISTEN_PID: "7" }, 7), RangeError, "LISTEN_FDS");
});

Deno.test("listenFds unsets LISTEN_* whatever they hold (unless asked not to)", () =>
  withEnv({ LISTEN_PID: String(Deno.pid + 1), LISTEN_FDS: "1", LISTEN_FDNAMES: "x" }, () => {
    assertEquals(listenFds({ unsetEnvironment: false }), []);
    assertEquals(Deno.env.get("LISTEN_FDS"), "1");
    assertEquals(listenFds(), []);
    for (const k of ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"]) {
      assertEquals(Deno.env.get(k), undefined);
    }
    Deno.env.set("LISTEN_PID", String(Deno.pid));
    Deno.env.set("LISTEN_FDS", "bogus");
    assertThrows(() => listenFds(), RangeError);
    assertEquals(Deno.env.get("LISTEN_PID"), undefined, "unset even when malformed");
  }));

Deno.test("listenFds takes real inherited fds 3.. in a socket-activated child", async () => {
  // /bin/sh plays systemd: it opens fds 3 and 4 without close-on-exec, sets
  // LISTEN_PID to its own pid and execs deno, which keeps that pid.
  const dir = Deno.makeTempDirSync();
  try {
    const url = new URL("../../reactor/sd_notify.ts", import.meta.url).href;
    const fdUrl = new URL("../../ffi/fd.ts", import.meta.url).href;
    const script = `${dir}/child.ts`;
    Deno.writeTextFileSync(
      script,
      `import { listenFds } from "${url}";
import { isCloexec } from "${fdUrl}";
const before = [isCloexec(3), isCloexec(4)];
const fds = listenFds();
console.log(JSON.stringify({
  before,
  after: [isCloexec(3), isCloexec(4)],
  fds,
  targets: fds.map(({ fd }) => Deno.readLinkSync("/proc/self/fd/" + fd)),
  env: ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"].map((k) => Deno.env.get(k) ?? null),
}));
`,
    );
    Deno.writeTextFileSync(`${dir}/a`, "a");
    Deno.writeTextFileSync(`${dir}/b`, "b");
    const out = await new Deno.Command("/bin/sh", {
      args: [
        "-c",
        'exec 3<"$D/a" 4<"$D/b"; export LISTEN_PID=$$ LISTEN_FDS=2 LISTEN_FDNAMES=web:admin; ' +
        'exec "$DENO" run --no-config -A "$D/child.ts"',
      ],
      env: { D: dir, DENO: Deno.execPath() },
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert(out.success, decoder.decode(out.stderr));
    const got = JSON.parse(decoder.decode(out.stdout));
    assertEquals(got.before, [false, false]);
    assertEquals(got.after, [true, true]);
    assertEquals(got.fds, [{ fd: 3, name: "web" }, { fd: 4, name: "admin" }]);
    assertEquals(got.targets, [`${dir}/a`, `${dir}/b`]);
    assertEquals(got.env, [null, null, null]);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
