import { assert, assertEquals, assertThrows } from "@std/assert";
import {
  closeFd,
  eventfd,
  eventfdRead,
  eventfdWrite,
  isCloexec,
  isNonBlocking,
  isOpen,
  listOpenFds,
  pipe,
  setCloexec,
  setNonBlocking,
} from "../../ffi/fd.ts";
import { EAGAIN, ErrnoError } from "../../ffi/errno.ts";
import { read, write } from "../../ffi/syscalls.ts";
import { withFdCheck } from "../_helpers.ts";

Deno.test("fd: pipe defaults to blocking, close-on-exec; options apply", () =>
  withFdCheck(() => {
    const [r, w] = pipe();
    const [nr, nw] = pipe({ nonblock: true, cloexec: false });
    try {
      assert(r !== w);
      for (const fd of [r, w]) {
        assert(isOpen(fd));
        assert(isCloexec(fd));
        assert(!isNonBlocking(fd));
      }
      for (const fd of [nr, nw]) {
        assert(!isCloexec(fd));
        assert(isNonBlocking(fd));
      }
      assertEquals(write(w, new Uint8Array([1, 2, 3])), 3);
      const buf = new Uint8Array(8);
      assertEquals(read(r, buf), 3);
      assertEquals(read(nr, buf), -EAGAIN);
    } finally {
      for (const fd of [r, w, nr, nw]) closeFd(fd);
    }
  }));

Deno.test("fd: setNonBlocking and setCloexec toggle and are idempotent", () =>
  withFdCheck(() => {
    const [r, w] = pipe();
    try {
      setNonBlocking(r, true);
      assert(isNonBlocking(r));
      setNonBlocking(r, true);
      assert(isNonBlocking(r));
      assertEquals(read(r, new Uint8Array(1)), -EAGAIN);
      setNonBlocking(r, false);
      assert(!isNonBlocking(r));

      setCloexec(w, false);
      assert(!isCloexec(w));
      setCloexec(w, false);
      assert(!isCloexec(w));
      setCloexec(w, true);
      assert(isCloexec(w));
      assert(isCloexec(r), "FD_CLOEXEC is per fd");
    } finally {
      closeFd(r);
      closeFd(w);
    }
  }));

Deno.test("fd: eventfd counts writes and reads 0 when empty", () =>
  withFdCheck(() => {
    const efd = eventfd();
    try {
      assert(isNonBlocking(efd));
      assert(isCloexec(efd));
      assertEquals(eventfdRead(efd), 0);
      eventfdWrite(efd);
      eventfdWrite(efd, 41);
      assertEquals(eventfdRead(efd), 42);
      assertEquals(eventfdRead(efd), 0);
      eventfdWrite(efd, 2 ** 40);
      assertEquals(eventfdRead(efd), 2 ** 40);
      assertThrows(() => eventfdWrite(efd, 0), RangeError);
      assertThrows(() => eventfdWrite(efd, 1.5), RangeError);
    } finally {
      closeFd(efd);
    }

    const sem = eventfd({ initial: 3, semaphore: true });
    try {
      assertEquals(eventfdRead(sem), 1);
      assertEquals(eventfdRead(sem), 1);
      assertEquals(eventfdRead(sem), 1);
      assertEquals(eventfdRead(sem), 0);
    } finally {
      closeFd(sem);
    }

    const blocking = eventfd({ nonblock: false, cloexec: false, initial: 7 });
    try {
      assert(!isNonBlocking(blocking));
      assert(!isCloexec(blocking));
      assertEquals(eventfdRead(blocking), 7);
    } finally {
      closeFd(blocking);
    }
  }));

Deno.test("fd: isOpen, closeFd and errors on closed fds", () =>
  withFdCheck(() => {
    const [r, w] = pipe();
    closeFd(r);
    closeFd(w);
    assertEquals(isOpen(r), false);
    assertEquals(isOpen(-1), false);
    const e = assertThrows(() => closeFd(r), ErrnoError);
    assertEquals(e.code, "EBADF");
    assertEquals(e.syscall, "close");
    assertEquals(assertThrows(() => isCloexec(r), ErrnoError).code, "EBADF");
    assertEquals(assertThrows(() => setNonBlocking(r, true), ErrnoError).code, "EBADF");
    assertEquals(assertThrows(() => eventfdRead(r), ErrnoError).code, "EBADF");
    assertEquals(assertThrows(() => eventfdWrite(r), ErrnoError).code, "EBADF");
  }));

Deno.test("fd: listOpenFds sees new fds and their targets", () => {
  const before = listOpenFds();
  assert(before.has(0) || before.has(1) || before.has(2));
  const [r, w] = pipe();
  try {
    const during = listOpenFds();
    assertEquals(during.size, before.size + 2);
    assert(during.get(r)!.startsWith("pipe:["), during.get(r));
    assertEquals(during.get(r), during.get(w));
  } finally {
    closeFd(r);
    closeFd(w);
  }
  assertEquals(listOpenFds(), before);
});
