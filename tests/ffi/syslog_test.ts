import { evalChild, spawnsDeno } from "./_child.ts";
import { assert, assertEquals, assertStringIncludes, assertThrows } from "@std/assert";
import {
  closelog,
  currentIdent,
  escapeSyslogControls,
  facilityByName,
  LOG_ALERT,
  LOG_AUTH,
  LOG_AUTHPRIV,
  LOG_CONS,
  LOG_CRIT,
  LOG_CRON,
  LOG_DAEMON,
  LOG_DEBUG,
  LOG_EMERG,
  LOG_ERR,
  LOG_FACMASK,
  LOG_FTP,
  LOG_INFO,
  LOG_KERN,
  LOG_LOCAL0,
  LOG_LOCAL7,
  LOG_LPR,
  LOG_MAIL,
  LOG_MASK,
  LOG_NDELAY,
  LOG_NEWS,
  LOG_NOTICE,
  LOG_NOWAIT,
  LOG_ODELAY,
  LOG_PERROR,
  LOG_PID,
  LOG_PRIMASK,
  LOG_SYSLOG,
  LOG_UPTO,
  LOG_USER,
  LOG_UUCP,
  LOG_WARNING,
  openlog,
  priorityByName,
  resolveFacility,
  resolvePriority,
  setlogmask,
  syslog,
} from "../../ffi/syslog.ts";
import { withFdCheck } from "../_helpers.ts";

Deno.test("syslog: constants match <syslog.h>", () => {
  assertEquals(
    [LOG_EMERG, LOG_ALERT, LOG_CRIT, LOG_ERR, LOG_WARNING, LOG_NOTICE, LOG_INFO, LOG_DEBUG],
    [0, 1, 2, 3, 4, 5, 6, 7],
  );
  assertEquals(
    [LOG_KERN, LOG_USER, LOG_MAIL, LOG_DAEMON, LOG_AUTH, LOG_SYSLOG, LOG_LPR, LOG_NEWS],
    [0, 8, 16, 24, 32, 40, 48, 56],
  );
  assertEquals([LOG_UUCP, LOG_CRON, LOG_AUTHPRIV, LOG_FTP], [64, 72, 80, 88]);
  assertEquals([LOG_LOCAL0, LOG_LOCAL7], [128, 184]);
  assertEquals(
    [LOG_PID, LOG_CONS, LOG_ODELAY, LOG_NDELAY, LOG_NOWAIT, LOG_PERROR],
    [1, 2, 4, 8, 0x10, 0x20],
  );
  assertEquals(LOG_PRIMASK, 7);
  assertEquals(LOG_FACMASK, 0x3f8);
});

Deno.test("syslog: LOG_MASK and LOG_UPTO", () => {
  assertEquals(LOG_MASK(LOG_EMERG), 1);
  assertEquals(LOG_MASK(LOG_ERR), 8);
  assertEquals(LOG_MASK(LOG_DEBUG), 128);
  assertEquals(LOG_UPTO(LOG_EMERG), 1);
  assertEquals(LOG_UPTO(LOG_ERR), 0b1111);
  assertEquals(LOG_UPTO(LOG_WARNING), 0b11111);
  assertEquals(LOG_UPTO(LOG_DEBUG), 0xff);
  for (let p = 0; p <= 7; p++) {
    let sum = 0;
    for (let q = 0; q <= p; q++) sum |= LOG_MASK(q);
    assertEquals(LOG_UPTO(p), sum);
  }
});

Deno.test("syslog: facility and priority names", () => {
  assertEquals(facilityByName.kern, LOG_KERN);
  assertEquals(facilityByName.daemon, LOG_DAEMON);
  assertEquals(facilityByName.authpriv, LOG_AUTHPRIV);
  assertEquals(facilityByName.security, LOG_AUTH);
  for (let i = 0; i <= 7; i++) assertEquals(facilityByName[`local${i}`], (16 + i) << 3);
  assertEquals(Object.keys(facilityByName).length, 21);
  assertEquals(priorityByName.emerg, 0);
  assertEquals(priorityByName.panic, 0);
  assertEquals(priorityByName.err, 3);
  assertEquals(priorityByName.error, 3);
  assertEquals(priorityByName.warning, 4);
  assertEquals(priorityByName.warn, 4);
  assertEquals(priorityByName.debug, 7);
  assert(Object.isFrozen(facilityByName) && Object.isFrozen(priorityByName));

  assertEquals(resolveFacility("local3"), 19 << 3);
  assertEquals(resolveFacility("DAEMON"), LOG_DAEMON);
  assertEquals(resolvePriority("info"), LOG_INFO);
  assertEquals(resolvePriority("Notice"), LOG_NOTICE);
});

Deno.test("syslog: unknown names throw RangeError", () => {
  assertThrows(
    () => resolveFacility("x"),
    RangeError,
    'Cannot resolve syslog facility: unknown name "x"',
  );
  assertThrows(
    () => resolvePriority("loud"),
    RangeError,
    'Cannot resolve syslog priority: unknown name "loud"',
  );
  // Names inherited from Object.prototype are not facilities.
  assertThrows(() => resolveFacility("toString"), RangeError);
  assertThrows(() => resolvePriority("__proto__"), RangeError);
  assertThrows(() => resolveFacility("local8"), RangeError);
  assertThrows(() => resolveFacility(""), RangeError);
});

Deno.test("syslog: format directives in a message are plain text (in process)", () =>
  withFdCheck(() => {
    openlog("ffinet-test", LOG_NDELAY, LOG_USER);
    try {
      assertEquals(currentIdent(), "ffinet-test");
      syslog(LOG_USER | LOG_DEBUG, "%n%s%x%p%n%n%s%s%s%s");
      syslog(LOG_INFO, "%".repeat(2000) + "n");
      syslog(LOG_NOTICE, "");
      openlog(null, 0, LOG_USER); // keeps the ident
      assertEquals(currentIdent(), "ffinet-test");
      openlog("second\0ignored", 0, LOG_DAEMON);
      assertEquals(currentIdent(), "second#000ignored");
      syslog(LOG_DEBUG, "%n%s%x");
    } finally {
      closelog(); // closes the logger's socket, checked by withFdCheck
    }
    assertEquals(currentIdent(), null);
  }));

Deno.test("syslog: setlogmask returns the previous mask", () => {
  const old = setlogmask(LOG_UPTO(LOG_ERR));
  try {
    assertEquals(setlogmask(0), LOG_UPTO(LOG_ERR)); // 0 only reads
    assertEquals(setlogmask(LOG_MASK(LOG_INFO)), LOG_UPTO(LOG_ERR));
    assertEquals(setlogmask(0), LOG_MASK(LOG_INFO));
  } finally {
    setlogmask(old);
  }
  assertEquals(setlogmask(0), old);
});

Deno.test(
  spawnsDeno("syslog: LOG_PERROR shows the message logged literally and the ident kept alive"),
  async () => {
    const url = new URL("../../ffi/syslog.ts", import.meta.url).href;
    const script = `
    import * as s from "${url}";
    s.openlog(["ffinet", "child"].join("-"), s.LOG_PERROR | s.LOG_PID, s.LOG_LOCAL0);
    // Churn the heap: a collected ident buffer would show up as garbage below.
    for (let i = 0; i < 20; i++) { new Uint8Array(1 << 20); globalThis.gc(); }
    s.syslog(s.LOG_LOCAL0 | s.LOG_INFO, "%n%s%x%p 100% literal");
    s.setlogmask(s.LOG_UPTO(s.LOG_INFO));
    s.syslog(s.LOG_DEBUG, "masked out");
    s.syslog(s.LOG_WARNING, "after mask");
    s.closelog();
  `;
    const { stderr } = await evalChild(script, ["--v8-flags=--expose-gc"]);
    const lines = stderr.split("\n").filter((l) => l.length > 0);
    assertEquals(lines.length, 2, stderr);
    assertStringIncludes(lines[0]!, "ffinet-child[");
    assert(lines[0]!.endsWith("]: %n%s%x%p 100% literal"), lines[0]);
    assert(lines[1]!.endsWith(": after mask"), lines[1]);
  },
);

Deno.test(
  spawnsDeno("syslog: newline, CR and NUL in an ident or message cannot forge log lines"),
  async () => {
    assertEquals(escapeSyslogControls("a\nb\rc\0d\te\x1b\x7f"), "a#012b#015c#000d\te#033#177");
    const url = new URL("../../ffi/syslog.ts", import.meta.url).href;
    const script = `
    import * as s from "${url}";
    s.openlog("app\\nroot: forged ident", s.LOG_PERROR, s.LOG_LOCAL0);
    s.syslog(s.LOG_LOCAL0 | s.LOG_INFO, "login failed\\nsshd[1]: Accepted password for root\\r\\0tail");
    s.closelog();
  `;
    const { stderr } = await evalChild(script);
    const lines = stderr.split("\n").filter((l) => l.length > 0);
    assertEquals(lines.length, 1, stderr); // one message, one line
    assert(lines[0]!.startsWith("app#012root: forged ident: "), lines[0]);
    assert(
      lines[0]!.endsWith("login failed#012sshd[1]: Accepted password for root#015#000tail"),
      lines[0],
    );
  },
);
