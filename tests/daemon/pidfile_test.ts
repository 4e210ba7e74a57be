import { assert, assertEquals, assertFalse, assertStringIncludes, assertThrows } from "@std/assert";
import {
  AlreadyRunningError,
  controlSocketPath,
  ensurePrivateDir,
  PidFile,
  readPidFile,
  RUNTIME_DIR_ENV,
  runtimeDir,
} from "../../daemon/pidfile.ts";
import { umask } from "../../ffi/process.ts";
import { exists, withFdCheck } from "../_helpers.ts";

const decoder = new TextDecoder();

/** Run `fn` in a fresh temp dir with umask 022, removing the dir after. */
async function inTempDir(fn: (dir: string) => unknown): Promise<void> {
  const dir = Deno.makeTempDirSync({ prefix: "ffinet-pidfile-" });
  const old = umask(0o022);
  try {
    await withFdCheck(() => fn(dir));
  } finally {
    umask(old);
    Deno.removeSync(dir, { recursive: true });
  }
}

/**
 * A child Deno process that tries to take the pid file at `path`. Its
 * module caches are its own (`DENO_DIR` under `dir`): in the shared one,
 * every child waits out SQLite's 5 s busy timeout while another Deno (a
 * `deno check` or `deno doc` of the same run) holds a write lock there.
 */
async function childAcquire(
  dir: string,
  path: string,
  mode: "release" | "keep" | "hold",
): Promise<{ code: number; stdout: string; stderr: string; ms: number }> {
  const url = new URL("../../daemon/pidfile.ts", import.meta.url).href;
  const script = `${dir}/child.ts`;
  // Written once per directory: children started together must not see it rewritten.
  if (!exists(script)) {
    Deno.writeTextFileSync(
      script,
      `import { PidFile } from "${url}";
try {
  const p = PidFile.acquire(Deno.args[0]);
  console.log(JSON.stringify({ pid: p.pid, stalePid: p.stalePid }));
  if (Deno.args[1] === "hold") await new Promise((r) => setTimeout(r, 1500));
  if (Deno.args[1] !== "keep") p.release(); // keep: exit holding it, as in a crash
} catch (e) {
  console.error((e as Error).message);
  Deno.exit(3);
}
`,
      { createNew: true },
    );
  }
  const started = performance.now();
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--no-config",
      "--allow-ffi",
      "--allow-read",
      "--allow-write",
      script,
      path,
      mode,
    ],
    env: { DENO_DIR: `${dir}/deno_dir` },
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code: out.code,
    stdout: decoder.decode(out.stdout),
    stderr: decoder.decode(out.stderr),
    ms: performance.now() - started,
  };
}

/** The pid of a process that has exited. */
async function deadPid(): Promise<number> {
  const child = new Deno.Command("true", { stdout: "null", stderr: "null" }).spawn();
  await child.status;
  return child.pid;
}

Deno.test("PidFile.acquire creates, locks and writes the pid; release removes it", () =>
  inTempDir((dir) => {
    const path = `${dir}/d.pid`;
    assertEquals(readPidFile(path), { exists: false, pid: null, running: false });
    const p = PidFile.acquire(path);
    assertEquals(p.pid, Deno.pid);
    assertEquals(p.stalePid, null);
    assertFalse(p.released);
    assertEquals(Deno.readTextFileSync(path), `${Deno.pid}\n`);
    const info = Deno.lstatSync(path);
    assertEquals(info.mode! & 0o777, 0o600);
    assertEquals(info.mode! & 0o002, 0, "not world-writable");
    assertEquals(readPidFile(path), { exists: true, pid: Deno.pid, running: true });
    p.release();
    p.release(); // idempotent
    assert(p.released);
    assertThrows(() => p.fd, Error, "released");
    assertThrows(() => Deno.lstatSync(path), Deno.errors.NotFound);
    assertEquals(readPidFile(path), { exists: false, pid: null, running: false });
  }));

Deno.test("PidFile: a second acquire in the same process is refused (flock per open file)", () =>
  inTempDir((dir) => {
    const path = `${dir}/d.pid`;
    using _p = PidFile.acquire(path);
    const e = assertThrows(
      () => PidFile.acquire(path),
      AlreadyRunningError,
      `Cannot start: already running with pid ${Deno.pid} (pid file ${path})`,
    );
    assertEquals(e.pid, Deno.pid);
    assertEquals(e.path, path);
    assertEquals(Deno.readTextFileSync(path), `${Deno.pid}\n`, "the refused attempt wrote nothing");
  }));

Deno.test("PidFile: another process is refused with the message and a non-zero exit", () =>
  inTempDir(async (dir) => {
    const path = `${dir}/d.pid`;
    {
      using _p = PidFile.acquire(path);
      const child = await childAcquire(dir, path, "release");
      assertEquals(child.code, 3);
      assertEquals(
        child.stderr.trim(),
        `Cannot start: already running with pid ${Deno.pid} (pid file ${path})`,
      );
    }
    // Released: now the child takes it, and gives it back.
    const child = await childAcquire(dir, path, "release");
    assertEquals(child.code, 0, child.stderr);
    assertEquals(JSON.parse(child.stdout).stalePid, null);
    assertThrows(() => Deno.lstatSync(path), Deno.errors.NotFound);
  }));

Deno.test("PidFile: of six processes starting at once, exactly one gets the pid file", () =>
  inTempDir(async (dir) => {
    const path = `${dir}/d.pid`;
    // One child first fills the private module caches: the six only read them.
    const first = await childAcquire(dir, `${dir}/first.pid`, "release");
    assertEquals(first.code, 0, first.stderr);
    const results = await Promise.all(
      Array.from({ length: 6 }, () => childAcquire(dir, path, "hold")),
    );
    console.log(
      `six processes: each exited ${
        results.map((r) => (r.ms / 1000).toFixed(1)).join(", ")
      } s after it was spawned (the winner holds the file 1.5 s)`,
    );
    const codes = results.map((r) => r.code).sort();
    assertEquals(codes, [0, 3, 3, 3, 3, 3], results.map((r) => r.stderr).join(""));
    const winner = JSON.parse(results.find((r) => r.code === 0)!.stdout).pid;
    for (const r of results.filter((r) => r.code === 3)) {
      assertEquals(
        r.stderr.trim(),
        `Cannot start: already running with pid ${winner} (pid file ${path})`,
      );
    }
    assertThrows(() => Deno.lstatSync(path), Deno.errors.NotFound);
  }));

Deno.test("PidFile takes over the pid file of a process that died holding it", () =>
  inTempDir(async (dir) => {
    const path = `${dir}/d.pid`;
    const child = await childAcquire(dir, path, "keep"); // exits without releasing
    assertEquals(child.code, 0, child.stderr);
    const childPid: number = JSON.parse(child.stdout).pid;
    const status = readPidFile(path);
    assertEquals(status, { exists: true, pid: childPid, running: false });
    using p = PidFile.acquire(path);
    assertEquals(p.stalePid, childPid);
    assertEquals(Deno.readTextFileSync(path), `${Deno.pid}\n`);
  }));

Deno.test("PidFile replaces a stale pid file naming a dead process", () =>
  inTempDir(async (dir) => {
    const path = `${dir}/d.pid`;
    const dead = await deadPid();
    // Longer than the new content: the file must be truncated, not overwritten in place.
    Deno.writeTextFileSync(path, `${dead}\n${"x".repeat(40)}\n`, { mode: 0o644 });
    assertEquals(readPidFile(path), { exists: true, pid: null, running: false });
    Deno.writeTextFileSync(path, `${dead}\n`);
    assertEquals(readPidFile(path), { exists: true, pid: dead, running: false });
    using p = PidFile.acquire(path);
    assertEquals(p.stalePid, dead);
    assertEquals(Deno.readTextFileSync(path), `${Deno.pid}\n`);
    assertEquals(readPidFile(path), { exists: true, pid: Deno.pid, running: true });
  }));

Deno.test("PidFile narrows the mode of a group/world-writable stale file; refuses such a mode", () =>
  inTempDir((dir) => {
    const path = `${dir}/d.pid`;
    Deno.writeTextFileSync(path, "1\n");
    Deno.chmodSync(path, 0o666);
    using _p = PidFile.acquire(path);
    assertEquals(Deno.lstatSync(path).mode! & 0o777, 0o600);
    assertThrows(
      () => PidFile.acquire(`${dir}/other.pid`, { mode: 0o666 }),
      RangeError,
      "without group/world write",
    );
    assertThrows(() => Deno.lstatSync(`${dir}/other.pid`), Deno.errors.NotFound);
  }));

Deno.test("PidFile refuses a symlink, a directory and a hard-linked file", () =>
  inTempDir((dir) => {
    const target = `${dir}/target`;
    Deno.writeTextFileSync(target, "keep me\n");
    const link = `${dir}/link.pid`;
    Deno.symlinkSync(target, link);
    assertThrows(() => PidFile.acquire(link), Error, `${link} is a symbolic link`);
    assertThrows(() => readPidFile(link), Error, `${link} is a symbolic link`);
    // A dangling symlink: O_NOFOLLOW | O_CREAT must not create its target either.
    const dangling = `${dir}/dangling.pid`;
    Deno.symlinkSync(`${dir}/nowhere`, dangling);
    assertThrows(() => PidFile.acquire(dangling), Error, "symbolic link");
    assertThrows(() => Deno.lstatSync(`${dir}/nowhere`), Deno.errors.NotFound);
    Deno.mkdirSync(`${dir}/sub.pid`);
    assertThrows(() => PidFile.acquire(`${dir}/sub.pid`), Error, "not a regular file");
    Deno.linkSync(target, `${dir}/hard.pid`);
    assertThrows(() => PidFile.acquire(`${dir}/hard.pid`), Error, "2 hard links");
    assertEquals(Deno.readTextFileSync(target), "keep me\n");
  }));

Deno.test("PidFile.release leaves a file that no longer holds its pid", () =>
  inTempDir((dir) => {
    const path = `${dir}/d.pid`;
    const p = PidFile.acquire(path);
    Deno.removeSync(path);
    Deno.writeTextFileSync(path, "12345\n"); // someone else's now
    p.release();
    assertEquals(Deno.readTextFileSync(path), "12345\n");
  }));

Deno.test("PidFile.acquire reports a missing directory as an ErrnoError", () =>
  inTempDir((dir) => {
    assertThrows(() => PidFile.acquire(`${dir}/no/such/d.pid`), Error, "ENOENT");
  }));

Deno.test({
  name: "PidFile and readPidFile refuse a pid file owned by another user",
  ignore: Deno.uid() !== 0,
  fn: () =>
    inTempDir((dir) => {
      // Root can hand a file to another user: the "planted" case of the issue.
      const path = `${dir}/planted.pid`;
      Deno.writeTextFileSync(path, "1\n");
      Deno.chownSync(path, 65534, 65534);
      assertThrows(() => readPidFile(path), Error, "is owned by uid 65534, not by uid 0");
      assertThrows(() => PidFile.acquire(path), Error, "is owned by uid 65534, not by uid 0");
      assertEquals(Deno.readTextFileSync(path), "1\n", "the planted file is left alone");
    }),
});
if (Deno.uid() !== 0) console.log("skip: the foreign-owner pid file test needs root (chown)");

Deno.test("readPidFile refuses a symlink and a hard-linked file as acquire does", () =>
  inTempDir((dir) => {
    Deno.writeTextFileSync(`${dir}/real.pid`, `${Deno.pid}\n`);
    Deno.symlinkSync(`${dir}/real.pid`, `${dir}/link.pid`);
    assertThrows(() => readPidFile(`${dir}/link.pid`), Error, "is a symbolic link");
    Deno.linkSync(`${dir}/real.pid`, `${dir}/hard.pid`);
    assertThrows(() => readPidFile(`${dir}/hard.pid`), Error, "hard links");
    assertEquals(readPidFile(`${dir}/none.pid`), { exists: false, pid: null, running: false });
  }));

Deno.test("runtimeDir: FFINET_RUNTIME_DIR, /run/ffinet for root, else XDG or /tmp/ffinet-UID", () => {
  const saved = {
    rt: Deno.env.get(RUNTIME_DIR_ENV),
    xdg: Deno.env.get("XDG_RUNTIME_DIR"),
  };
  try {
    Deno.env.set(RUNTIME_DIR_ENV, "/x/private");
    assertEquals(runtimeDir(), "/x/private");
    Deno.env.delete(RUNTIME_DIR_ENV);
    Deno.env.set("XDG_RUNTIME_DIR", "/run/user/1000");
    if (Deno.uid() === 0) assertEquals(runtimeDir(), "/run/ffinet");
    else assertEquals(runtimeDir(), "/run/user/1000/ffinet");
    Deno.env.delete("XDG_RUNTIME_DIR");
    if (Deno.uid() !== 0) assertEquals(runtimeDir(), `/tmp/ffinet-${Deno.uid()}`);
    assert(!runtimeDir().startsWith("/tmp/ffinet-serve"), "no shared /tmp pid file any more");
  } finally {
    if (saved.rt === undefined) Deno.env.delete(RUNTIME_DIR_ENV);
    else Deno.env.set(RUNTIME_DIR_ENV, saved.rt);
    if (saved.xdg === undefined) Deno.env.delete("XDG_RUNTIME_DIR");
    else Deno.env.set("XDG_RUNTIME_DIR", saved.xdg);
  }
});

Deno.test("ensurePrivateDir creates 0700; refuses a symlink, a wide mode and a foreign owner", () =>
  inTempDir((dir) => {
    const ok = `${dir}/rt`;
    ensurePrivateDir(ok);
    assertEquals(Deno.statSync(ok).mode! & 0o777, 0o700);
    ensurePrivateDir(ok); // an existing, correct one is fine
    Deno.symlinkSync(ok, `${dir}/link`);
    assertThrows(() => ensurePrivateDir(`${dir}/link`), Error, "is a symbolic link");
    Deno.mkdirSync(`${dir}/wide`);
    Deno.chmodSync(`${dir}/wide`, 0o777);
    assertThrows(() => ensurePrivateDir(`${dir}/wide`), Error, "has mode 0777");
    Deno.writeTextFileSync(`${dir}/file`, "");
    assertThrows(() => ensurePrivateDir(`${dir}/file`), Error, "not a directory");
    if (Deno.uid() === 0) {
      Deno.mkdirSync(`${dir}/theirs`, { mode: 0o700 });
      Deno.chownSync(`${dir}/theirs`, 65534, 65534);
      assertThrows(() => ensurePrivateDir(`${dir}/theirs`), Error, "owned by uid 65534");
    }
    assertEquals(controlSocketPath(`${ok}/serve.pid`), `${ok}/serve.sock`);
    assertEquals(controlSocketPath(`${ok}/x`), `${ok}/x.sock`);
  }));

Deno.test("PidFile: a write that fails (full disk, file size limit) leaves no empty pid file behind", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ffinet-pid-full-" });
  try {
    // A child with RLIMIT_FSIZE of 3 bytes (SIGXFSZ ignored, so the write
    // comes back short): the pid and its newline never fit.
    const script = `${dir}/acquire.ts`;
    const pidfile = new URL("../../daemon/pidfile.ts", import.meta.url).href;
    const process = new URL("../../ffi/process.ts", import.meta.url).href;
    Deno.writeTextFileSync(
      script,
      `import { PidFile } from "${pidfile}";\n` +
        `import { getrlimit, setrlimit } from "${process}";\n` +
        `const RLIMIT_FSIZE = 1;\n` +
        `setrlimit(RLIMIT_FSIZE, { soft: 3, hard: getrlimit(RLIMIT_FSIZE).hard });\n` +
        `try { PidFile.acquire("${dir}/d.pid"); console.log("acquired"); }\n` +
        `catch (e) { console.log("refused: " + (e as Error).message); }\n`,
    );
    const out = await new Deno.Command("/bin/sh", {
      args: ["-c", `trap '' XFSZ; exec "$0" run -A "$1"`, Deno.execPath(), script],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    assertStringIncludes(text, "refused: Cannot create pid file: short write");
    assertThrows(() => Deno.lstatSync(`${dir}/d.pid`), Deno.errors.NotFound, undefined, text);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
