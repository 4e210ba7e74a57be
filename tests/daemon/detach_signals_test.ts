/**
 * The signal-mask fault: a daemon started from a parent that
 * blocks SIGTERM and SIGHUP (python3's `signal.pthread_sigmask`, then
 * `os.execvp` of `serve --daemon`) must still reload on SIGHUP and stop on
 * SIGTERM, and neither it nor its workers may keep those signals blocked.
 */
import { assert, assertEquals } from "@std/assert";
import { resetSignalMask } from "../../daemon/detach.ts";
import { blockedSignals, blockSignals } from "../../ffi/spawn.ts";
import { CLI_APP, cliRunArgs, daemonArgs } from "./fixtures/cli_run.ts";
import {
  alive,
  childrenOf,
  freePort,
  httpGet,
  killAll,
  procRead,
  waitUntil,
} from "./fixtures/helpers.ts";

const SIGHUP = 1;
const SIGTERM = 15;

/** python3 `-c` script: block SIGTERM and SIGHUP, then exec `argv[1:]`. */
const BLOCK_THEN_EXEC = "import os, signal, sys\n" +
  "signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGHUP})\n" +
  "os.execvp(sys.argv[1], sys.argv[1:])\n";

/** The blocked-signal set of `pid` (`SigBlk` in `/proc/<pid>/status`). */
function sigBlk(pid: number): bigint {
  const m = /^SigBlk:\s*([0-9a-f]+)$/m.exec(procRead(`/proc/${pid}/status`));
  if (m === null) throw new Error(`no SigBlk for pid ${pid}`);
  return BigInt(`0x${m[1]}`);
}

function blocks(mask: bigint, signal: number): boolean {
  return (mask & (1n << BigInt(signal - 1))) !== 0n;
}

function python3(): string | null {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    try {
      if (Deno.statSync(`${dir}/python3`).isFile) return `${dir}/python3`;
    } catch { /* next */ }
  }
  return null;
}

const PYTHON = python3();
if (PYTHON === null) console.log("skip: python3 is not installed (blocked-signal parent test)");

Deno.test("resetSignalMask unblocks SIGTERM and SIGHUP in this thread", () => {
  const before = blockedSignals();
  try {
    blockSignals(["SIGTERM", "SIGHUP"]);
    assert(blockedSignals().includes(SIGTERM));
    assert(resetSignalMask());
    const now = blockedSignals();
    assert(!now.includes(SIGTERM) && !now.includes(SIGHUP), `still blocked: ${now}`);
  } finally {
    if (before.length > 0) blockSignals(before);
  }
});

Deno.test({
  name: "serve --daemon from a parent blocking SIGTERM/SIGHUP: reload and stop still work",
  ignore: PYTHON === null,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "ffinet-sigmask-" });
    const pidfile = `${dir}/serve.pid`;
    const port = freePort();
    const seen = new Set<number>();
    try {
      const out = await new Deno.Command(PYTHON!, {
        args: [
          "-c",
          BLOCK_THEN_EXEC,
          Deno.execPath(),
          ...cliRunArgs([...daemonArgs(port), "--pidfile", pidfile]),
        ],
        env: { FFINET_RUNTIME_DIR: dir, NO_COLOR: "1" },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).output();
      const stderr = new TextDecoder().decode(out.stderr);
      assertEquals(out.code, 0, stderr);
      const sup = Number(new TextDecoder().decode(out.stdout).trim());
      seen.add(sup);
      const before = childrenOf(sup);
      before.forEach((p) => seen.add(p));
      assertEquals(before.length, 2);
      for (const pid of [sup, ...before]) {
        const mask = sigBlk(pid);
        assert(!blocks(mask, SIGTERM) && !blocks(mask, SIGHUP), `pid ${pid} SigBlk ${mask}`);
      }
      assertEquals((await httpGet(port)).body, "Hello, World!");

      Deno.kill(sup, "SIGHUP");
      await waitUntil(
        () => {
          const now = childrenOf(sup).filter(alive);
          now.forEach((p) => seen.add(p));
          return now.length === 2 && now.every((p) => !before.includes(p));
        },
        15_000,
        "SIGHUP to replace both workers",
      );
      Deno.kill(sup, "SIGTERM");
      await waitUntil(() => !alive(sup), 15_000, "SIGTERM to stop the supervisor");
      for (const p of seen) await waitUntil(() => !alive(p), 5000, `pid ${p} to exit`);
    } finally {
      killAll(seen);
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "serve in the foreground, exec'd by a parent blocking SIGTERM/SIGHUP, unblocks them",
  ignore: PYTHON === null,
  async fn() {
    // No Deno.Command in between this time: the supervisor process itself
    // inherits the blocked mask across exec, and must clear it.
    const port = freePort();
    const child = new Deno.Command(PYTHON!, {
      args: [
        "-c",
        BLOCK_THEN_EXEC,
        Deno.execPath(),
        ...cliRunArgs([CLI_APP, "--port", String(port), "--workers", "1"]),
      ],
      env: { NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    const seen = new Set<number>([child.pid]);
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    try {
      let out = "";
      const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
      while (!out.includes("\n")) {
        const r = await reader.read();
        if (r.done) break;
        out += r.value;
      }
      clearTimeout(timer);
      assertEquals(out.trim(), `listening on 127.0.0.1:${port}`);
      const mask = sigBlk(child.pid); // the main thread's mask
      assert(!blocks(mask, SIGTERM) && !blocks(mask, SIGHUP), `SigBlk ${mask.toString(16)}`);
      const before = childrenOf(child.pid);
      before.forEach((p) => seen.add(p));
      Deno.kill(child.pid, "SIGHUP");
      await waitUntil(
        () => {
          const now = childrenOf(child.pid).filter(alive);
          now.forEach((p) => seen.add(p));
          return now.length === 1 && !before.includes(now[0]!);
        },
        15_000,
        "SIGHUP to replace the worker",
      );
      Deno.kill(child.pid, "SIGTERM");
      assertEquals((await child.status).code, 0);
    } finally {
      killAll(seen);
      await reader.cancel().catch(() => {});
      await child.status;
    }
  },
});
