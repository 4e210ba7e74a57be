import { assert, assertEquals, assertMatch, assertStringIncludes, assertThrows } from "@std/assert";
import { createLogger, formatLogMessage, Logger } from "../../daemon/syslog.ts";
import { Socket } from "../../ffi/socket.ts";
import { LOG_LOCAL1, LOG_NOTICE, LOG_USER } from "../../ffi/syslog.ts";
import { sleep, waitFor, withFdCheck } from "../_helpers.ts";

const decoder = new TextDecoder();
const STAMP = "[A-Z][a-z]{2} [ 1-3][0-9] [0-2][0-9]:[0-5][0-9]:[0-6][0-9]";

/** A Unix datagram receiver bound at `path`. */
function receiver(path: string): Socket {
  const s = Socket.create("unix", "dgram");
  s.bind({ family: "unix", path });
  return s;
}

/** Wait for `count` datagrams on `sock` (5 s at most). */
async function receive(sock: Socket, count: number): Promise<string[]> {
  const buf = new Uint8Array(65536);
  const out: string[] = [];
  await waitFor(
    () => {
      for (;;) {
        const n = sock.read(buf);
        if (n === null) break;
        out.push(decoder.decode(buf.subarray(0, n)));
      }
      return out.length >= count;
    },
    5000,
    `${count} datagram(s)`,
  );
  return out;
}

/** Nothing more arrives on `sock` within `ms`. */
async function assertQuiet(sock: Socket, ms = 50): Promise<void> {
  await sleep(ms);
  assertEquals(sock.read(new Uint8Array(65536)), null);
}

Deno.test("Logger sends <PRI>timestamp ident[pid]: message to its socket", async () => {
  const dir = Deno.makeTempDirSync();
  try {
    await withFdCheck(async () => {
      using sink = receiver(`${dir}/log`);
      using log = new Logger({ path: `${dir}/log`, ident: "myd", facility: "local0" });
      assert(log.connected);
      log.warning("disk at", 91, "%");
      log.info("hello");
      log.emergency("bye");
      const [a, b, c] = await receive(sink, 3);
      assertMatch(a!, new RegExp(`^<132>${STAMP} myd\\[${Deno.pid}\\]: disk at 91 %$`));
      assertMatch(b!, new RegExp(`^<134>${STAMP} myd\\[${Deno.pid}\\]: hello$`));
      assertMatch(c!, new RegExp(`^<128>${STAMP} myd\\[${Deno.pid}\\]: bye$`));
      assertEquals(log.stats, { sent: 3, dropped: 0 });
    });
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("Logger maps every level to its priority; defaults are daemon and ffinet[pid]", async () => {
  const dir = Deno.makeTempDirSync();
  try {
    await withFdCheck(async () => {
      using sink = receiver(`${dir}/log`);
      using log = createLogger({ path: `${dir}/log` });
      log.emergency("0");
      log.alert("1");
      log.critical("2");
      log.error("3");
      log.warning("4");
      log.warn("4");
      log.notice("5");
      log.info("6");
      log.debug("7");
      log.log("err", "3");
      log.log(5, "5");
      const got = await receive(sink, 11);
      const pris = got.map((line) => Number(/^<(\d+)>/.exec(line)![1]));
      assertEquals(pris, [24, 25, 26, 27, 28, 28, 29, 30, 31, 27, 29]);
      for (const line of got) assertStringIncludes(line, ` ffinet[${Deno.pid}]: `);
    });
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("Logger: pid: false drops [pid]; a numeric facility is accepted", async () => {
  const dir = Deno.makeTempDirSync();
  try {
    await withFdCheck(async () => {
      using sink = receiver(`${dir}/log`);
      using log = new Logger({ path: `${dir}/log`, ident: "x", pid: false, facility: LOG_USER });
      log.notice("n");
      const [line] = await receive(sink, 1);
      assertMatch(line!, new RegExp(`^<13>${STAMP} x: n$`));
    });
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("Logger never treats the message as a format; args are formatted", async () => {
  const dir = Deno.makeTempDirSync();
  try {
    await withFdCheck(async () => {
      using sink = receiver(`${dir}/log`);
      using log = new Logger({ path: `${dir}/log` });
      log.info("%n%s%x%%");
      log.info("%s", "a", 1, { b: [2] }, null, undefined);
      const err = new Error("boom");
      log.error("failed:", err);
      const [fmt, args, error] = await receive(sink, 3);
      assert(fmt!.endsWith(": %n%s%x%%"), fmt);
      assert(args!.endsWith(': %s a 1 {"b":[2]} null undefined'), args);
      // The stack's newlines are escaped: one message, one line (daemon/syslog.ts).
      assertStringIncludes(error!, ": failed: Error: boom\\n    at ");
    });
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("formatLogMessage handles cycles, BigInt and error causes", () => {
  const cyclic: Record<string, unknown> = { a: 1 };
  cyclic.self = cyclic;
  assertStringIncludes(formatLogMessage("c", [cyclic]), "a: 1");
  assertEquals(formatLogMessage(1n, [Symbol("s")]), "1 Symbol(s)");
  assertStringIncludes(formatLogMessage({ big: 1n }, []), "big: 1n");
  const e = new Error("outer", { cause: new Error("inner") });
  const text = formatLogMessage(e, []);
  assertStringIncludes(text, "Error: outer");
  assertStringIncludes(text, "Caused by: Error: inner");
});

Deno.test("Logger mask filters by priority, and a function message is only called when sent", async () => {
  const dir = Deno.makeTempDirSync();
  try {
    await withFdCheck(async () => {
      using sink = receiver(`${dir}/log`);
      using log = new Logger({ path: `${dir}/log`, mask: "warning" });
      let calls = 0;
      log.info(() => (calls++, "lazy"));
      log.debug("no");
      log.warn(() => (calls++, "yes"));
      assertEquals(calls, 1);
      assert(log.isEnabled("error") && !log.isEnabled("notice"));
      const old = log.setMask("debug");
      assertEquals(old, 0b11111);
      log.debug("now");
      log.setMask(1 << 3); // LOG_MASK(LOG_ERR) only
      log.critical("no");
      log.error("only err");
      const got = await receive(sink, 3);
      assert(got[0]!.endsWith(": yes"));
      assert(got[1]!.endsWith(": now"));
      assert(got[2]!.endsWith(": only err"));
      await assertQuiet(sink);
      assertEquals(log.stats, { sent: 3, dropped: 0 });
      assertThrows(() => log.setMask("loud" as "info"), RangeError, "unknown syslog priority");
    });
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("Logger never blocks: 100k messages to a receiver that never reads", async () => {
  const dir = Deno.makeTempDirSync();
  try {
    await withFdCheck(() => {
      using _sink = receiver(`${dir}/log`);
      using log = new Logger({ path: `${dir}/log` });
      const start = performance.now();
      for (let i = 0; i < 100_000; i++) log.info("message", i);
      const elapsed = performance.now() - start;
      // A blocking send would hang here for good; the bound only has to
      // hold on a loaded 2-core box (about 300 ms idle, 2.5 s under load).
      assert(elapsed < 10_000, `100k log calls took ${elapsed.toFixed(0)} ms`);
      const { sent, dropped } = log.stats;
      assertEquals(sent + dropped, 100_000);
      assert(sent > 0, "some messages fit in the receive queue");
      assert(dropped > 0, "the rest are dropped");
    });
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("Logger with a missing socket counts drops and never throws", async () => {
  const dir = Deno.makeTempDirSync();
  try {
    await withFdCheck(() => {
      using log = new Logger({ path: `${dir}/absent` });
      assert(!log.connected);
      for (let i = 0; i < 1000; i++) log.error("lost", i);
      assertEquals(log.stats, { sent: 0, dropped: 1000 });
    });
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("Logger reconnects lazily, at most once per interval, to a receiver that appears", async () => {
  const dir = Deno.makeTempDirSync();
  const path = `${dir}/log`;
  try {
    await withFdCheck(async () => {
      using log = new Logger({ path, reconnectInterval: 300 });
      assert(!log.connected);
      using sink = receiver(path);
      log.info("too early"); // the failed connect was < 300 ms ago: no retry yet
      assertEquals(log.stats, { sent: 0, dropped: 1 });
      await sleep(350);
      log.info("after reconnect");
      assert(log.connected);
      const [line] = await receive(sink, 1);
      assert(line!.endsWith(": after reconnect"), line);
      assertEquals(log.stats, { sent: 1, dropped: 1 });
    });
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("Logger survives a receiver restart (ECONNREFUSED, then a new socket)", async () => {
  const dir = Deno.makeTempDirSync();
  const path = `${dir}/log`;
  try {
    await withFdCheck(async () => {
      let log: Logger;
      {
        using first = receiver(path);
        log = new Logger({ path, reconnectInterval: 50 });
        log.info("one");
        assert((await receive(first, 1))[0]!.endsWith(": one"));
      }
      Deno.removeSync(path);
      log.info("lost: nobody listens"); // ECONNREFUSED: dropped, disconnected
      assert(!log.connected);
      assertEquals(log.stats, { sent: 1, dropped: 1 });
      using second = receiver(path);
      await sleep(60);
      log.info("two");
      assert((await receive(second, 1))[0]!.endsWith(": two"));
      assertEquals(log.stats, { sent: 2, dropped: 1 });
      log.close();
    });
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("Logger after close drops and counts; close is idempotent", async () => {
  const dir = Deno.makeTempDirSync();
  try {
    await withFdCheck(async () => {
      using sink = receiver(`${dir}/log`);
      const log = new Logger({ path: `${dir}/log` });
      log.close();
      log.close();
      assert(log.closed && !log.connected);
      log.info("late");
      assertEquals(log.stats, { sent: 0, dropped: 1 });
      await assertQuiet(sink);
    });
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("Logger rejects an unknown facility, a bad numeric one and a bad mask", () => {
  assertThrows(
    () => new Logger({ facility: "x" as "daemon" }),
    RangeError,
    'Cannot create logger: unknown syslog facility "x"',
  );
  assertThrows(() => new Logger({ facility: 25 }), RangeError, "invalid syslog facility 25");
  assertThrows(() => new Logger({ mask: "chatty" as "info" }), RangeError, "unknown syslog");
  assertThrows(() => new Logger({ path: "/x".repeat(100) }), RangeError, "Cannot create logger");
});

Deno.test("Logger perror and stderrFallback write ident[pid]: message lines to stderr", async () => {
  const dir = Deno.makeTempDirSync();
  try {
    const url = new URL("../../daemon/syslog.ts", import.meta.url).href;
    const script = `${dir}/child.ts`;
    Deno.writeTextFileSync(
      script,
      `import { Logger } from "${url}";
const [mode, path] = Deno.args;
const log = mode === "fallback"
  ? new Logger({ path, ident: "kid", stderrFallback: true })
  : new Logger({ path, ident: "kid", perror: true });
console.error("before");
log.warning("to %s stderr", 1);
console.error("after");
console.log(JSON.stringify(log.stats));
log.close();
`,
    );
    const expected = /^before\nkid\[\d+\]: to %s stderr 1\nafter\n$/;
    using sink = receiver(`${dir}/log`);
    const deno = ["run", "--no-config", "--allow-ffi", "--allow-read", script];
    for (
      const [mode, path, stats] of [
        ["perror", `${dir}/log`, { sent: 1, dropped: 0 }],
        ["fallback", `${dir}/absent`, { sent: 0, dropped: 1 }],
      ] as const
    ) {
      const out = await new Deno.Command(Deno.execPath(), {
        args: [...deno, mode, path],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const stderr = decoder.decode(out.stderr);
      assert(out.success, stderr);
      assertMatch(stderr, expected);
      assertEquals(JSON.parse(decoder.decode(out.stdout)), stats);
    }
    // stderr redirected to a regular file (written through fd 2 itself, so
    // Deno's own writes to fd 2 and the logger's share one file offset).
    const out = await new Deno.Command("/bin/sh", {
      args: ["-c", 'exec "$@" 2>"$F"', "sh", Deno.execPath(), ...deno, "perror", `${dir}/absent`],
      env: { F: `${dir}/stderr.txt` },
      stdout: "null",
      stderr: "null",
    }).output();
    assert(out.success);
    assertMatch(Deno.readTextFileSync(`${dir}/stderr.txt`), expected);
    const got = await receive(sink, 1);
    assertEquals(got.length, 1);
    assertMatch(got[0]!, /^<28>.* kid\[\d+\]: to %s stderr 1$/);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("Logger perror never blocks on a stderr pipe nobody reads", async () => {
  const dir = Deno.makeTempDirSync();
  try {
    const url = new URL("../../daemon/syslog.ts", import.meta.url).href;
    const script = `${dir}/child.ts`;
    Deno.writeTextFileSync(
      script,
      `import { Logger } from "${url}";
const log = new Logger({ path: Deno.args[0], perror: true });
for (let i = 0; i < 20000; i++) log.info("a line of about sixty bytes of text, number", i);
log.close();
Deno.writeTextFileSync(Deno.args[1], "done");
`,
    );
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--no-config",
        "--allow-ffi",
        "--allow-read",
        "--allow-write",
        script,
        `${dir}/absent`,
        `${dir}/done`,
      ],
      stdout: "null",
      stderr: "piped", // never read while the child runs: the pipe fills up
    }).spawn();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), 15000);
    });
    const status = await Promise.race([child.status, timeout]);
    clearTimeout(timer);
    if (status === "timeout") child.kill("SIGKILL");
    await child.stderr.cancel();
    if (status === "timeout") await child.status;
    if (status === "timeout") throw new Error("the child blocked writing to its full stderr pipe");
    assert(status.success);
    assertEquals(Deno.readTextFileSync(`${dir}/done`), "done");
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

/**
 * Why a private mount namespace with its own `/dev/log` cannot be made here,
 * or null when it can: it needs root and `unshare(1)`. The host's `/dev/log`
 * is never created, replaced or removed: the child sees a private `/dev`
 * (a tmpfs in its own mount namespace) whose `log` is a bind mount of the
 * test's socket in a temporary directory.
 */
const namespaceMissing = (() => {
  if (Deno.uid() !== 0) return "not root (a private mount namespace needs root)";
  try {
    const out = new Deno.Command("unshare", {
      args: ["--mount", "--propagation", "private", "true"],
      stdout: "null",
      stderr: "piped",
    }).outputSync();
    if (!out.success) return `unshare --mount fails: ${decoder.decode(out.stderr).trim()}`;
  } catch {
    return "unshare(1) is not installed";
  }
  return null;
})();
if (namespaceMissing !== null) {
  console.log(`skip: syslog_test.ts › the /dev/log test: ${namespaceMissing}`);
}

Deno.test({
  name: "Logger and libc syslog(3) both reach /dev/log (a private one, in a mount namespace)",
  ignore: namespaceMissing !== null,
  async fn() {
    const dir = Deno.makeTempDirSync({ prefix: "ffinet-syslog-" });
    try {
      await withFdCheck(async () => {
        using sink = receiver(`${dir}/log`);
        const ffiSyslog = new URL("../../ffi/syslog.ts", import.meta.url).href;
        const daemonSyslog = new URL("../../daemon/syslog.ts", import.meta.url).href;
        Deno.writeTextFileSync(
          `${dir}/child.ts`,
          `import { closelog, LOG_LOCAL1, LOG_NOTICE, LOG_PID, openlog, syslog } from "${ffiSyslog}";
import { Logger } from "${daemonSyslog}";
const log = new Logger({ ident: "ffinet-test", facility: "local1" }); // the default path, /dev/log
log.notice("%n%s from Logger");
console.log(log.path, JSON.stringify(log.stats));
log.close();
openlog("ffinet-libc", LOG_PID, LOG_LOCAL1);
syslog(LOG_NOTICE, "%n%s from libc");
closelog();
`,
        );
        // In the child's own mount namespace only: keep the real /dev reachable,
        // put a tmpfs over /dev, bring back the nodes Deno uses, and bind the
        // test's socket as /dev/log.
        const setup = [
          "set -e",
          'mkdir "$D/hostdev"',
          'mount --bind /dev "$D/hostdev"',
          "mount -t tmpfs -o mode=755 ffinet-test-dev /dev",
          'for n in null zero full random urandom tty; do touch "/dev/$n"; mount --bind "$D/hostdev/$n" "/dev/$n"; done',
          "ln -s /proc/self/fd /dev/fd",
          'touch /dev/log && mount --bind "$D/log" /dev/log',
          'exec "$@"',
        ].join("\n");
        const out = await new Deno.Command("unshare", {
          args: [
            "--mount",
            "--propagation",
            "private",
            "/bin/sh",
            "-c",
            setup,
            "sh",
            Deno.execPath(),
            "run",
            "--no-config",
            "--allow-ffi",
            "--allow-read",
            `${dir}/child.ts`,
          ],
          env: { D: dir },
          stdout: "piped",
          stderr: "piped",
        }).output();
        const stderr = decoder.decode(out.stderr);
        assert(out.success, `the child failed: ${stderr}`);
        assertEquals(decoder.decode(out.stdout).trim(), '/dev/log {"sent":1,"dropped":0}');
        const got = (await receive(sink, 2)).sort();
        const pri = LOG_LOCAL1 | LOG_NOTICE; // 141
        assertMatch(
          got[0]!,
          new RegExp(`^<${pri}>${STAMP} ffinet-libc\\[\\d+\\]: %n%s from libc$`),
        );
        assertMatch(
          got[1]!,
          new RegExp(`^<${pri}>${STAMP} ffinet-test\\[\\d+\\]: %n%s from Logger$`),
        );
        await assertQuiet(sink);
      });
      // Nothing of the child's namespace is left on the host.
      assertEquals(Deno.readDirSync(`${dir}/hostdev`).next().done, true, "hostdev is not empty");
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
});
