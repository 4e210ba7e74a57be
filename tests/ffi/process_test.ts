import { evalChild, spawnsDeno } from "./_child.ts";
import { assert, assertEquals, assertStringIncludes, assertThrows } from "@std/assert";
import {
  chdir,
  dup2,
  flock,
  getpid,
  getppid,
  getrlimit,
  getsid,
  getuid,
  kill,
  openFile,
  pidfdOpen,
  readProcFile,
  setrlimit,
  umask,
  unlink,
} from "../../ffi/process.ts";
import { LOCK, O, RLIMIT } from "../../ffi/constants.ts";
import { ErrnoError } from "../../ffi/errno.ts";
import { closeFd, isCloexec, isOpen, pipe } from "../../ffi/fd.ts";
import { read, write } from "../../ffi/syscalls.ts";
import { withFdCheck } from "../_helpers.ts";

/** The pid of a child that has exited and been reaped. */
async function deadPid(): Promise<number> {
  const child = new Deno.Command("true", { stdin: "null", stdout: "null", stderr: "null" }).spawn();
  await child.status;
  return child.pid;
}

Deno.test("process: ids agree with Deno", () => {
  assertEquals(getpid(), Deno.pid);
  assertEquals(getppid(), Deno.ppid);
  assertEquals(getuid(), Deno.uid());
  // 0 when the session leader lives outside this pid namespace (a sandbox,
  // a container); never negative, since errors throw.
  assert(getsid() >= 0);
  assertEquals(getsid(0), getsid(getpid()));
});

Deno.test("process: kill(pid, 0) of self succeeds, of a dead pid is ESRCH", async () => {
  kill(Deno.pid, 0);
  const pid = await deadPid();
  const e = assertThrows(() => kill(pid, 0), ErrnoError);
  assertEquals(e.code, "ESRCH");
  assertEquals(e.syscall, "kill");
  assertStringIncludes(e.message, "Cannot kill: ESRCH (No such process)");
  assertEquals(assertThrows(() => getsid(pid), ErrnoError).code, "ESRCH");
});

Deno.test("process: pidfdOpen gives a close-on-exec fd; a dead pid is ESRCH", async () => {
  const pid = await deadPid();
  await withFdCheck(() => {
    const fd = pidfdOpen(Deno.pid);
    try {
      assert(fd > 2);
      assert(isCloexec(fd));
    } finally {
      closeFd(fd);
    }
    assertEquals(assertThrows(() => pidfdOpen(pid), ErrnoError).code, "ESRCH");
  });
});

Deno.test("process: lowering the soft NOFILE limit round-trips and is restored", () => {
  const original = getrlimit(RLIMIT.NOFILE);
  assert(original.soft > 64);
  assert(original.hard >= original.soft);
  const lowered = original.soft === Infinity ? 4096 : original.soft - 1;
  try {
    setrlimit(RLIMIT.NOFILE, { soft: lowered, hard: original.hard });
    assertEquals(getrlimit(RLIMIT.NOFILE), { soft: lowered, hard: original.hard });
  } finally {
    setrlimit(RLIMIT.NOFILE, original);
  }
  assertEquals(getrlimit(RLIMIT.NOFILE), original);

  // Soft above hard is EINVAL; bad numbers never reach the kernel.
  const e = assertThrows(
    () =>
      setrlimit(RLIMIT.NOFILE, {
        soft: original.hard === Infinity ? Infinity : original.hard + 1,
        hard: original.hard === Infinity ? 1024 : original.hard,
      }),
    ErrnoError,
  );
  assertEquals(e.code, "EINVAL");
  assertThrows(() => setrlimit(RLIMIT.NOFILE, { soft: -1, hard: 10 }), RangeError);
  assertThrows(() => setrlimit(RLIMIT.NOFILE, { soft: 1.5, hard: 10 }), RangeError);
  assertEquals(getrlimit(RLIMIT.NOFILE), original);
});

Deno.test("process: RLIM_INFINITY reads as Infinity", () => {
  // Some limit is unlimited on any ordinary system; each must map to Infinity, never 2^64-1.
  let infinite = 0;
  for (const resource of [RLIMIT.CORE, RLIMIT.NOFILE, RLIMIT.NPROC, 0, 1, 2, 3, 5, 8, 9]) {
    const limit = getrlimit(resource);
    for (const v of [limit.soft, limit.hard]) {
      assert(v === Infinity || Number.isSafeInteger(v), `${v}`);
      if (v === Infinity) infinite++;
    }
    // Setting a limit to what it already is exercises Infinity -> RLIM_INFINITY.
    setrlimit(resource, limit);
    assertEquals(getrlimit(resource), limit);
  }
  assert(infinite > 0, "some limit is unlimited");
  assertEquals(assertThrows(() => getrlimit(9999), ErrnoError).code, "EINVAL");
});

Deno.test("process: umask round trip", () => {
  const old = umask(0o027);
  try {
    assertEquals(umask(0o077), 0o027);
    assertEquals(umask(0o027), 0o077);
  } finally {
    assertEquals(umask(old), 0o027);
  }
});

Deno.test("process: chdir changes the working directory", () => {
  const before = Deno.cwd();
  const dir = Deno.realPathSync(Deno.makeTempDirSync());
  try {
    chdir(dir);
    assertEquals(Deno.cwd(), dir);
  } finally {
    chdir(before);
    Deno.removeSync(dir);
  }
  assertEquals(Deno.cwd(), before);
  const e = assertThrows(() => chdir(dir), ErrnoError);
  assertEquals(e.code, "ENOENT");
  assertStringIncludes(e.message, dir);
  assertThrows(() => chdir("a\0b"), TypeError, "NUL");
});

Deno.test("process: flock contention between two open files of the same path", () =>
  withFdCheck(() => {
    const path = Deno.makeTempFileSync();
    const a = openFile(path, O.RDWR | O.CLOEXEC);
    const b = openFile(path, O.RDWR | O.CLOEXEC);
    try {
      assertEquals(flock(a, LOCK.EX | LOCK.NB), true);
      assertEquals(flock(b, LOCK.EX | LOCK.NB), false);
      assertEquals(flock(b, LOCK.SH | LOCK.NB), false);
      assertEquals(flock(a, LOCK.UN), true);
      assertEquals(flock(b, LOCK.EX | LOCK.NB), true);
      assertEquals(flock(a, LOCK.SH | LOCK.NB), false);
      assertEquals(flock(b, LOCK.SH), true); // downgrade: shared locks coexist
      assertEquals(flock(a, LOCK.SH | LOCK.NB), true);
    } finally {
      closeFd(a);
      closeFd(b);
      unlink(path);
    }
    assertEquals(assertThrows(() => flock(a, LOCK.EX), ErrnoError).code, "EBADF");
  }));

Deno.test("process: unlink and open of a missing file are ENOENT by name", () =>
  withFdCheck(() => {
    const path = Deno.makeTempFileSync();
    unlink(path);
    const e = assertThrows(() => unlink(path), ErrnoError);
    assertEquals(e.code, "ENOENT");
    assertEquals(e.errno, 2);
    assertEquals(e.syscall, "unlink");
    assertEquals(e.message, `Cannot unlink: ENOENT (No such file or directory) [${path}]`);
    assertEquals(assertThrows(() => openFile(path, O.RDONLY), ErrnoError).code, "ENOENT");
    const fd = openFile(path, O.WRONLY | O.CREAT | O.EXCL | O.CLOEXEC, 0o600);
    try {
      assertEquals(Deno.statSync(path).mode! & 0o777, 0o600 & ~umask(umask(0)));
      assertEquals(
        assertThrows(() => openFile(path, O.WRONLY | O.CREAT | O.EXCL), ErrnoError).code,
        "EEXIST",
      );
    } finally {
      closeFd(fd);
      unlink(path);
    }
  }));

Deno.test("process: dup2 makes a second fd for the same pipe", () =>
  withFdCheck(() => {
    const [r, w] = pipe();
    let target = 700;
    while (isOpen(target)) target++;
    try {
      assertEquals(dup2(w, target), target);
      assertEquals(isCloexec(target), false);
      assertEquals(write(target, new TextEncoder().encode("dup")), 3);
      const buf = new Uint8Array(8);
      assertEquals(read(r, buf), 3);
      assertEquals(new TextDecoder().decode(buf.subarray(0, 3)), "dup");
    } finally {
      if (isOpen(target)) closeFd(target);
      closeFd(r);
      closeFd(w);
    }
    assertEquals(assertThrows(() => dup2(-1, target), ErrnoError).code, "EBADF");
  }));

Deno.test(
  spawnsDeno("process: setsid, setgroups, setgid and setuid in a child process"),
  async () => {
    const url = new URL("../../ffi/process.ts", import.meta.url).href;
    const script = `
    import * as p from "${url}";
    const out = {};
    out.sid = p.setsid() === p.getpid() && p.getsid() === p.getpid();
    if (p.getuid() === 0) {
      p.setgroups([]);
      p.setgid(65534);
      p.setuid(65534);
      out.uid = p.getuid();
      try { p.setuid(0); out.regained = true; } catch (e) { out.regained = e.code; }
    } else {
      try { p.setgroups([]); out.groups = "ok"; } catch (e) { out.groups = e.code; }
    }
    console.log(JSON.stringify(out));
  `;
    const { stdout } = await evalChild(script);
    const out = JSON.parse(stdout);
    assertEquals(out.sid, true);
    if (getuid() === 0) {
      assertEquals(out.uid, 65534);
      assertEquals(out.regained, "EPERM");
    } else {
      assertEquals(out.groups, "EPERM");
    }
  },
);

Deno.test("readProcFile reads a whole file past its first 64 KiB read, never a truncated text", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ffinet-proc-" });
  try {
    const text = "0123456789abcdef".repeat(20_000) + "end";
    await Deno.writeTextFile(`${dir}/big`, text);
    assertEquals(readProcFile(`${dir}/big`), text);
    assertStringIncludes(readProcFile("/proc/sys/net/ipv4/tcp_rmem"), "\t");
    assertThrows(() => readProcFile(`${dir}/missing`), ErrnoError);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
