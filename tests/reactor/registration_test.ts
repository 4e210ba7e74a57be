/**
 * Registrations with real fds: stale events for a reused fd number, fds
 * closed while registered, and the errors for misuse.
 */
import {
  assert,
  assertEquals,
  assertInstanceOf,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import { O } from "../../ffi/constants.ts";
import { ErrnoError } from "../../ffi/errno.ts";
import { libc } from "../../ffi/libc.ts";
import { closeFd, eventfd, eventfdRead, eventfdWrite, pipe } from "../../ffi/fd.ts";
import { type AnyRegistration, Interest, Reactor } from "../../reactor/mod.ts";
import { withFdCheck } from "../_helpers.ts";
import { reopenAt, runFor } from "./_util.ts";

Deno.test("stale event: a batch event for an fd closed and reused by an earlier callback is dropped", () =>
  withFdCheck(async () => {
    await using reactor = new Reactor();
    const a = eventfd({ initial: 1 });
    const b = eventfd({ initial: 1 });
    const opened = new Set([a, b]);
    let replacement: { fd: number; reg: AnyRegistration; calls: number } | undefined;
    let firstCalls = 0;

    // Both fds are ready before the first wait, so one epoll_wait returns both.
    const onReady = (_ready: unknown, reg: AnyRegistration) => {
      firstCalls++;
      eventfdRead(reg.fd);
      const other = reg.fd === a ? b : a;
      const otherReg = reactor.registrationOf(other)!;
      // Deregister and close the other fd, then open a new fd that gets the
      // same number and register it: it even gets the freed token back.
      otherReg.deregister();
      closeFd(other);
      opened.delete(other);
      const fresh = reopenAt(other, () => eventfd());
      opened.add(fresh);
      const freshReg = reactor.register(fresh, Interest.READABLE, () => {
        replacement!.calls++;
      });
      replacement = { fd: fresh, reg: freshReg, calls: 0 };
      assertEquals(freshReg.fd, otherReg.fd);
      assertEquals(freshReg.token, otherReg.token, "the token was reused");
      assert(freshReg.generation !== otherReg.generation);
      reg.callback = () => {}; // once is enough
    };
    const regA = reactor.register(a, Interest.READABLE, onReady);
    const regB = reactor.register(b, Interest.READABLE, onReady);
    try {
      await runFor(reactor, 50);
      assertEquals(firstCalls, 1, "the second fd's old callback never ran");
      assertEquals(reactor.stats.staleEvents, 1, "the queued event was dropped");
      assertEquals(replacement!.calls, 0, "the new registration did not get the old event");

      // The new registration works normally for its own events.
      eventfdWrite(replacement!.fd);
      replacement!.reg.callback = () => {
        replacement!.calls++;
        eventfdRead(replacement!.fd);
        reactor.stop();
      };
      await runFor(reactor, 2000);
      assertEquals(replacement!.calls, 1);
    } finally {
      for (const reg of [regA, regB, replacement?.reg]) reg?.deregister();
      for (const fd of opened) closeFd(fd);
    }
  }));

Deno.test("an fd closed while registered: deregister() explains what happened", () =>
  withFdCheck(async () => {
    await using reactor = new Reactor();
    const efd = eventfd();
    const reg = reactor.register(efd, Interest.READABLE, () => {});
    closeFd(efd); // wrong order: the kernel drops the epoll entry silently
    const e = assertThrows(() => reg.deregister(), ErrnoError);
    assert(e.code === "EBADF" || e.code === "ENOENT", e.code);
    assertStringIncludes(e.message, "Cannot epoll_ctl(delete)");
    assertStringIncludes(e.message, "closed before being deregistered");
    assertEquals(reg.registered, false, "the registration is released anyway");
    assertEquals(reactor.stats.registrations, 0);
    reg.deregister(); // idempotent now
  }));

Deno.test("an fd closed while registered and its number reused: the old registration is marked stale", () =>
  withFdCheck(async () => {
    const reports: { error: unknown; reg: AnyRegistration | undefined }[] = [];
    await using reactor = new Reactor({
      onError: (error, reg) => reports.push({ error, reg }),
    });
    const old = eventfd();
    const oldReg = reactor.register(old, Interest.READABLE, () => {});
    closeFd(old);
    const fresh = reopenAt(old, () => eventfd());
    try {
      let calls = 0;
      const freshReg = reactor.register(fresh, Interest.READABLE, () => {
        calls++;
        eventfdRead(fresh);
        reactor.stop();
      });
      assertEquals(reports.length, 1);
      assertInstanceOf(reports[0]!.error, Error);
      assertStringIncludes((reports[0]!.error as Error).message, "closed while registered");
      assertEquals(reports[0]!.reg, oldReg);
      assertEquals(oldReg.state, "deleted");
      assertEquals(reactor.registrationOf(fresh), freshReg);
      assertEquals(reactor.stats.registrations, 1);

      assertThrows(() => oldReg.modify(Interest.WRITABLE), Error, "closed while still registered");
      assertThrows(() => oldReg.rearm(), Error, "closed while still registered");
      const e = assertThrows(() => oldReg.deregister(), Error);
      assertStringIncludes(e.message, `Cannot deregister fd ${old}`);
      assertStringIncludes(e.message, "closed while still registered");
      assertEquals(
        reactor.registrationOf(fresh),
        freshReg,
        "the stale handle did not touch the new one",
      );

      eventfdWrite(fresh);
      await runFor(reactor, 2000);
      assertEquals(calls, 1);
      freshReg.deregister();
    } finally {
      closeFd(fresh);
    }
  }));

Deno.test("registering the same fd twice is a clear error", () =>
  withFdCheck(async () => {
    await using reactor = new Reactor();
    const efd = eventfd();
    const reg = reactor.register(efd, Interest.READABLE, () => {});
    const e = assertThrows(() => reactor.register(efd, Interest.WRITABLE, () => {}), ErrnoError);
    assertEquals(e.code, "EEXIST");
    assertStringIncludes(e.message, "already registered with this reactor");
    assertEquals(reactor.stats.registrations, 1);
    assertEquals(reactor.registrationOf(efd), reg, "the first registration is untouched");

    // A registration that is known but not in the epoll set (empty interest).
    reg.modify(0);
    assertThrows(
      () => reactor.register(efd, Interest.READABLE, () => {}),
      Error,
      "already has a registration",
    );
    reg.deregister();
    // After deregistering, the fd can be registered again.
    reactor.register(efd, Interest.READABLE, () => {}).deregister();
    closeFd(efd);
  }));

Deno.test("modify, rearm and deregister of a deregistered handle", () =>
  withFdCheck(async () => {
    await using reactor = new Reactor();
    const [r, w] = pipe({ nonblock: true });
    const reg = reactor.register(r, Interest.READABLE | Interest.ONESHOT, () => {});
    reg.deregister();
    assertEquals(reg.registered, false);
    assertEquals(reg.state, "deleted");
    assertThrows(
      () => reg.modify(Interest.READABLE),
      Error,
      `Cannot modify registration of fd ${r}: the registration was deregistered`,
    );
    assertThrows(() => reg.rearm(), Error, "the registration was deregistered");
    reg.deregister(); // idempotent
    closeFd(r);
    closeFd(w);
  }));

Deno.test("invalid registrations are refused before any system call", () =>
  withFdCheck(async () => {
    await using reactor = new Reactor();
    const cb = () => {};
    assertThrows(
      () => reactor.register(-1, Interest.READABLE, cb),
      RangeError,
      "not a valid file descriptor",
    );
    assertThrows(() => reactor.register(1.5, Interest.READABLE, cb), RangeError);
    assertThrows(() => reactor.register(0, 0x40, cb), TypeError, "not Interest flags");
    assertThrows(
      () => reactor.register(0, Interest.READABLE, "nope" as unknown as () => void),
      TypeError,
      "callback is not a function",
    );
    assertThrows(
      () => reactor.register(reactor.wakerFd, Interest.READABLE, cb),
      Error,
      "reactor itself",
    );
    assertThrows(
      () => reactor.register(reactor.epfd, Interest.READABLE, cb),
      Error,
      "reactor itself",
    );
    assertEquals(reactor.stats.registrations, 0);

    // A kernel refusal frees the token: regular files cannot be polled.
    const file = Deno.makeTempFileSync();
    const fd = libc.open(new TextEncoder().encode(file + "\0"), O.RDONLY | O.CLOEXEC, 0);
    try {
      assert(fd >= 0);
      const e = assertThrows(() => reactor.register(fd, Interest.READABLE, cb), ErrnoError);
      assertEquals(e.code, "EPERM");
      assertStringIncludes(e.message, "cannot be polled");
    } finally {
      closeFd(fd);
      Deno.removeSync(file);
    }
    assertEquals(reactor.stats.registrations, 0);
    const efd = eventfd();
    const reg = reactor.register(efd, Interest.READABLE, cb);
    assertEquals(reg.token, 1, "the refused registration's token was given back");
    reg.deregister();
    closeFd(efd);
  }));

Deno.test("registration data, state and the registry lookups", () =>
  withFdCheck(async () => {
    await using reactor = new Reactor();
    const efd = eventfd();
    const reg = reactor.register(efd, Interest.READABLE | Interest.EDGE, () => {}, { name: "x" });
    assertEquals(reg.data, { name: "x" });
    assertEquals(reg.state, "added");
    // Interest bits are kept as a signed 32-bit number, exactly as `|` makes
    // them (EDGE is bit 31), so they compare equal to what the caller passed.
    assertEquals(reg.interest, Interest.READABLE | Interest.EDGE);
    assertEquals(reg.interest & Interest.EDGE, Interest.EDGE);
    assertEquals(reactor.registrationOf(efd), reg);
    const modeOnly = eventfd();
    const idle = reactor.register(modeOnly, Interest.EDGE, () => {});
    assertEquals(idle.state, "new", "an interest with no events is not added to the set");
    assertThrows(() => idle.rearm(), Error, "not in the epoll set");
    idle.deregister();
    reg.deregister();
    assertEquals(reactor.registrationOf(efd), undefined);
    closeFd(efd);
    closeFd(modeOnly);
  }));
