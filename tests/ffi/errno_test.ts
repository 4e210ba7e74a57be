import { assert, assertEquals, assertInstanceOf, assertThrows } from "@std/assert";
import {
  check,
  EADDRINUSE,
  EAGAIN,
  EBADF,
  ECONNABORTED,
  ECONNREFUSED,
  ECONNRESET,
  EEXIST,
  EINPROGRESS,
  EINTR,
  EINVAL,
  EMFILE,
  ENFILE,
  ENOENT,
  EPIPE,
  Errno,
  errnoCell,
  ErrnoError,
  errnoName,
  ETIMEDOUT,
  strerror,
} from "../../ffi/errno.ts";
import { libc } from "../../ffi/libc.ts";

Deno.test("errno: ErrnoError message, fields and detail", () => {
  const e = new ErrnoError("bind", 98);
  assertInstanceOf(e, Error);
  assertEquals(e.name, "ErrnoError");
  assertEquals(e.message, "Cannot bind: EADDRINUSE (Address already in use)");
  assertEquals(e.code, "EADDRINUSE");
  assertEquals(e.errno, 98);
  assertEquals(e.syscall, "bind");
  assertEquals(e.cause, undefined);

  const cause = new Error("root");
  const d = new ErrnoError("connect", ECONNREFUSED, { detail: "127.0.0.1:1", cause });
  assertEquals(d.message, "Cannot connect: ECONNREFUSED (Connection refused) [127.0.0.1:1]");
  assertEquals(d.cause, cause);

  const unknown = new ErrnoError("ioctl", 4000);
  assertEquals(unknown.code, "E4000");
  assert(unknown.message.startsWith("Cannot ioctl: E4000 ("), unknown.message);
});

Deno.test("errno: check passes results through and throws for -errno", () => {
  assertEquals(check("read", 0), 0);
  assertEquals(check("read", 5), 5);
  const e = assertThrows(() => check("accept4", -EAGAIN), ErrnoError);
  assertEquals(e.code, "EAGAIN");
  assertEquals(e.errno, 11);
  assertEquals(e.syscall, "accept4");
  assertEquals(e.message, "Cannot accept4: EAGAIN (Resource temporarily unavailable)");
  const d = assertThrows(() => check("open", -ENOENT, "/nope"), ErrnoError);
  assertEquals(d.message, "Cannot open: ENOENT (No such file or directory) [/nope]");
});

Deno.test("errno: the name table", () => {
  const expected: Record<string, number> = {
    EPERM: 1,
    ENOENT: 2,
    ESRCH: 3,
    EINTR: 4,
    EBADF: 9,
    EAGAIN: 11,
    ENOMEM: 12,
    EACCES: 13,
    EEXIST: 17,
    EINVAL: 22,
    ENFILE: 23,
    EMFILE: 24,
    EPIPE: 32,
    ENOSYS: 38,
    ENOTSOCK: 88,
    EMSGSIZE: 90,
    ENOPROTOOPT: 92,
    EOPNOTSUPP: 95,
    EAFNOSUPPORT: 97,
    EADDRINUSE: 98,
    EADDRNOTAVAIL: 99,
    ENETUNREACH: 101,
    ECONNABORTED: 103,
    ECONNRESET: 104,
    ENOBUFS: 105,
    EISCONN: 106,
    ENOTCONN: 107,
    ETIMEDOUT: 110,
    ECONNREFUSED: 111,
    EHOSTUNREACH: 113,
    EALREADY: 114,
    EINPROGRESS: 115,
  };
  for (const [name, value] of Object.entries(expected)) {
    assertEquals(errnoName(value), name);
    assertEquals(Errno[name], value);
  }
  // The table and the map agree in both directions, without duplicates.
  for (const [name, value] of Object.entries(Errno)) assertEquals(errnoName(value), name);
  assertEquals(new Set(Object.values(Errno)).size, Object.keys(Errno).length);
  assert(Object.isFrozen(Errno));
  assertEquals(errnoName(0), "E0");
  assertEquals(errnoName(41), "E41"); // no errno 41 on Linux
  assertEquals(errnoName(-1), "E-1");
  // The hot-path constants.
  assertEquals(
    [EAGAIN, EINTR, EINPROGRESS, EMFILE, ENFILE, EBADF, EPIPE, ECONNRESET, ECONNREFUSED],
    [11, 4, 115, 24, 23, 9, 32, 104, 111],
  );
  assertEquals([ETIMEDOUT, EADDRINUSE, ENOENT, EEXIST, EINVAL, ECONNABORTED], [
    110,
    98,
    2,
    17,
    22,
    103,
  ]);
});

Deno.test("errno: strerror uses libc's text", () => {
  assertEquals(strerror(98), "Address already in use");
  assertEquals(strerror(2), "No such file or directory");
  assertEquals(strerror(111), "Connection refused");
  assert(strerror(4000).length > 0);
});

Deno.test("errno: errnoCell is this thread's errno", () => {
  assertEquals(libc.close(-1), -1);
  assertEquals(errnoCell[0], EBADF);
  assertEquals(libc.socket(99, 1, 0), -1);
  assertEquals(errnoCell[0], Errno.EAFNOSUPPORT);
  errnoCell[0] = 0; // writable like errno itself
  assertEquals(errnoCell[0], 0);
});
