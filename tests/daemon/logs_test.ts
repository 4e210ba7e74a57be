/**
 * Worker output to syslog (`daemon/syslog.ts` and `daemon/cli/output.ts`),
 * always on a PRIVATE syslog socket in a temporary directory (never
 * /dev/log): newlines, CR and NUL cannot forge lines; lines carry the
 * worker's pid and a priority (stdout info, stderr err); ANSI colours are
 * stripped; a flood is cut and the dropped lines counted and logged; and,
 * when rsyslogd is installed, a private rsyslogd receives them with the
 * right pid and priority.
 */
import { assert, assertEquals, assertGreater, assertMatch, assertThrows } from "@std/assert";
import { OutputForwarder, stripAnsi } from "../../daemon/cli/output.ts";
import { escapeLogText, Logger } from "../../daemon/syslog.ts";
import { Socket } from "../../ffi/socket.ts";
import { exists, withFdCheck } from "../_helpers.ts";

const decoder = new TextDecoder();

/** A unix datagram socket bound at `path`, collecting what arrives. */
function sink(
  path: string,
): Socket & { take(n: number, ms?: number): Promise<string[]>; drain(): void } {
  const s = Socket.create("unix", "dgram");
  s.bind({ family: "unix", path });
  s.setOption("receiveBufferSize", 4 * 1024 * 1024);
  const buf = new Uint8Array(65536);
  const got: string[] = [];
  const drain = () => {
    for (let r; (r = s.receiveFrom(buf)) !== null;) {
      got.push(decoder.decode(buf.subarray(0, r.bytes)));
    }
  };
  const take = async (n: number, ms = 3000) => {
    const end = Date.now() + ms;
    for (;;) {
      drain();
      if (got.length >= n || Date.now() > end) return got.splice(0, got.length);
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  return Object.assign(s, { take, drain });
}

async function inTempDir(fn: (dir: string) => unknown): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "ffinet-logs-" });
  try {
    await withFdCheck(() => fn(dir));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("escapeLogText escapes newline, CR and NUL, nothing else", () => {
  assertEquals(escapeLogText("plain text: 100%"), "plain text: 100%");
  assertEquals(escapeLogText("a\nb\rc\0d"), "a\\nb\\rc\\0d");
  assertEquals(escapeLogText("tab\tstays"), "tab\tstays");
});

Deno.test("Logger: a newline, CR or NUL in the ident or message cannot forge a line", () =>
  inTempDir(async (dir) => {
    using s = sink(`${dir}/log`);
    using log = new Logger({ path: `${dir}/log`, ident: "app\nfake[1]: root login" });
    log.info("ok\nDec  1 00:00:00 host sshd[1]: Accepted password for root\r\0end");
    const line = (await s.take(1))[0] ?? "";
    assertEquals(line.split("\n").length, 1, "one datagram, one line");
    assert(!line.includes("\r") && !line.includes("\0"), JSON.stringify(line));
    assertMatch(
      line,
      /^<30>\w{3} [ \d]\d \d\d:\d\d:\d\d app\\nfake\[1\]: root login\[\d+\]: ok\\nDec {2}1 00:00:00 host sshd\[1\]: Accepted password for root\\r\\0end$/,
    );
  }));

Deno.test("Logger.logFor tags the line with the worker's pid; rejects a bad pid", () =>
  inTempDir(async (dir) => {
    using s = sink(`${dir}/log`);
    using log = new Logger({ path: `${dir}/log`, ident: "ffinet-serve", facility: "daemon" });
    log.logFor(4242, "info", "from stdout");
    log.logFor(4243, "err", "from stderr");
    const lines = await s.take(2);
    assertEquals(lines.length, 2);
    assertMatch(lines[0]!, /^<30>.* ffinet-serve\[4242\]: from stdout$/); // daemon.info
    assertMatch(lines[1]!, /^<27>.* ffinet-serve\[4243\]: from stderr$/); // daemon.err
    for (const bad of [0, -1, 1.5, NaN, 2 ** 31]) {
      assertThrows(() => log.logFor(bad, "info", "x"), RangeError, "pid");
    }
    assertThrows(() => log.logFor(1, "loud" as "info", "x"), RangeError, "priority");
  }));

Deno.test("stripAnsi removes colours, cursor moves and OSC titles", () => {
  assertEquals(stripAnsi("\x1b[1;31merror\x1b[0m: \x1b[2Kdone"), "error: done");
  assertEquals(stripAnsi("\x1b]0;title\x07text"), "text");
  assertEquals(stripAnsi("no escapes [31m"), "no escapes [31m");
});

Deno.test("OutputForwarder: stdout info, stderr err (the Listening on banner info), colours stripped, worker pid", () =>
  inTempDir(async (dir) => {
    using s = sink(`${dir}/log`);
    using log = new Logger({ path: `${dir}/log`, ident: "ffinet-serve" });
    const out = new OutputForwarder({ logger: log });
    try {
      assert(out.line(0, 5001, "stdout", "\x1b[32mGET / 200\x1b[0m"));
      assert(out.line(1, 5002, "stderr", "\x1b[31merror\x1b[0m: boom\nforged"));
      // serve()'s and Deno.serve's banner goes to stderr, but is no error.
      assert(out.line(1, 5002, "stderr", "Listening on http://127.0.0.1:8080/"));
      const lines = await s.take(3);
      assertMatch(lines[0]!, /^<30>.* ffinet-serve\[5001\]: GET \/ 200$/);
      assertMatch(lines[1]!, /^<27>.* ffinet-serve\[5002\]: error: boom\\nforged$/);
      assertMatch(lines[2]!, /^<30>.* ffinet-serve\[5002\]: Listening on http:/);
      assertEquals(out.dropped(0), 0);
    } finally {
      out.close();
    }
  }));

Deno.test("OutputForwarder: a flood is cut; dropped lines are counted and logged", () =>
  inTempDir(async (dir) => {
    using s = sink(`${dir}/log`);
    using log = new Logger({ path: `${dir}/log`, ident: "ffinet-serve" });
    const out = new OutputForwarder({ logger: log, burst: 100, linesPerSecond: 100 });
    try {
      let sent = 0;
      for (let i = 0; i < 5000; i++) {
        if (out.line(3, 6000, "stdout", `line ${i}`)) sent++;
        s.drain(); // a receiver that keeps up (unix datagram queues are short)
      }
      assert(sent >= 100 && sent < 200, `sent ${sent}`);
      assertEquals(out.dropped(3), 5000 - sent);
      assertEquals(out.dropped(9), 0, "an unknown worker dropped nothing");
      out.report();
      const lines = await s.take(sent + 1);
      assertEquals(lines.length, sent + 1);
      const report = lines.at(-1)!;
      assertMatch(
        report,
        new RegExp(
          `^<28>.* ffinet-serve\\[${Deno.pid}\\]: worker 3 \\(pid 6000\\): dropped ${
            5000 - sent
          } output lines`,
        ),
      );
      out.report(); // nothing new: no second report
      assertEquals((await s.take(1, 100)).length, 0);
      assertThrows(() => new OutputForwarder({ logger: log, burst: 0 }), RangeError, "burst");
      assertThrows(
        () => new OutputForwarder({ logger: log, linesPerSecond: 1.5 }),
        RangeError,
        "linesPerSecond",
      );
    } finally {
      out.close();
    }
  }));

Deno.test("OutputForwarder counts lines syslog could not take (receiver full)", () =>
  inTempDir((dir) => {
    using s = sink(`${dir}/log`);
    s.setOption("receiveBufferSize", 4096); // tiny: it fills at once
    using log = new Logger({ path: `${dir}/log`, ident: "ffinet-serve" });
    const out = new OutputForwarder({ logger: log, burst: 100_000, linesPerSecond: 1_000_000 });
    try {
      for (let i = 0; i < 5000; i++) out.line(0, 7000, "stderr", "x".repeat(200));
      assertGreater(out.dropped(0), 0, "a full receiver drops lines, and they are counted");
      assertEquals(out.dropped(0), log.stats.dropped);
    } finally {
      out.close();
    }
  }));

function rsyslogd(): string | null {
  for (const p of ["/usr/sbin/rsyslogd", "/sbin/rsyslogd", "/usr/bin/rsyslogd"]) {
    try {
      Deno.statSync(p);
      return p;
    } catch { /* next */ }
  }
  return null;
}

const RSYSLOGD = rsyslogd();
if (RSYSLOGD === null) console.log("skip: rsyslogd is not installed (logs_test rsyslog case)");

Deno.test({
  name: "a private rsyslogd receives worker lines with the worker's pid and priority",
  ignore: RSYSLOGD === null,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "ffinet-rsyslog-" });
    const conf = `${dir}/rsyslog.conf`;
    Deno.writeTextFileSync(
      conf,
      `global(workDirectory="${dir}")
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket="${dir}/log" CreatePath="on")
template(name="t" type="string" string="%syslogfacility-text%.%syslogseverity-text%|%programname%|%procid%|%msg%\\n")
*.* action(type="omfile" file="${dir}/out.log" template="t")
`,
    );
    const child = new Deno.Command(RSYSLOGD!, {
      args: ["-n", "-f", conf, "-i", `${dir}/rsyslogd.pid`],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const output = child.output();
    try {
      const end = Date.now() + 10_000;
      while (!exists(`${dir}/log`) && Date.now() < end) await sleep(20);
      if (!exists(`${dir}/log`)) {
        child.kill("SIGKILL");
        const o = await output;
        console.log(`skip: rsyslogd did not start: ${decoder.decode(o.stderr).slice(0, 300)}`);
        return;
      }
      const log = new Logger({ path: `${dir}/log`, ident: "ffinet-serve" });
      const out = new OutputForwarder({ logger: log });
      out.line(0, 31337, "stdout", "\x1b[1mhello from stdout\x1b[0m");
      out.line(1, 31338, "stderr", "oops on stderr\nsecond part");
      out.close();
      log.close();
      let text = "";
      while (Date.now() < end) {
        try {
          text = Deno.readTextFileSync(`${dir}/out.log`);
        } catch { /* not yet */ }
        if (text.split("\n").length > 2) break;
        await sleep(20);
      }
      const lines = text.trim().split("\n");
      assertEquals(lines.length, 2, text);
      // (rsyslog keeps the space after the tag in %msg%.)
      assertMatch(lines[0]!, /^daemon\.info\|ffinet-serve\|31337\| ?hello from stdout$/);
      assertMatch(lines[1]!, /^daemon\.err\|ffinet-serve\|31338\| ?oops on stderr\\nsecond part$/);
    } finally {
      try {
        child.kill("SIGTERM");
      } catch { /* exited */ }
      await output;
      await Deno.remove(dir, { recursive: true });
    }
  },
});

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
