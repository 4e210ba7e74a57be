/**
 * The control socket's hand-over during a supervisor upgrade: the old
 * supervisor stops accepting on the shared control socket before the new
 * one takes the pid file over and starts answering, so no `status` ever
 * names the old pid once the pid file names the new one.
 *
 * - `serve upgrade` end to end: `status` is asked in two tight loops
 *   straight on the socket (no client retry, no pid check) while the
 *   upgrade runs; each answer is paired with the pid file read just before
 *   the request. The old supervisor's workers ignore SIGTERM, so it stays
 *   alive (draining, for the drain timeout) after the hand-over, long
 *   enough to see that it no longer holds the control socket.
 * - The order itself, without timing luck: this process plays the old
 *   supervisor (`startSuccessor` with its `ControlServer`) and
 *   `_handover_successor.ts` the new one, which sends a request on the
 *   control socket after the hand-over and before it accepts: nobody may
 *   answer it until the new one serves. A successor that fails after the
 *   hand-over leaves the old one accepting again.
 */
import { assert, assertEquals, assertNotEquals, assertRejects } from "@std/assert";
import { controlRequest, ControlServer } from "../../../daemon/control.ts";
import { controlSocketPath } from "../../../daemon/pidfile.ts";
import { startSuccessor } from "../../../daemon/supervisor/upgrade.ts";
import { pidfdOpen } from "../../../ffi/process.ts";
import { waitPidfd } from "../../../ffi/spawn.ts";
import { close } from "../../../ffi/syscalls.ts";
import { cli as runCli, daemonArgs } from "../fixtures/cli_run.ts";
import {
  alive,
  childrenOf,
  freePort,
  killAll,
  procFds,
  procRead,
  sleep,
} from "../fixtures/helpers.ts";
import { NOTIFY_APP } from "../fixtures/supervised.ts";

/** `__SO_ACCEPTCON` in /proc/net/unix's Flags column: a listening socket. */
const SO_ACCEPTCON = 0x10000;

/** The inode of the listening Unix socket bound at `path` (from /proc/net/unix). */
function listeningInode(path: string): string {
  for (const line of procRead("/proc/net/unix").split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    // Num RefCount Protocol Flags Type St Inode Path
    if (f[7] === path && (parseInt(f[3]!, 16) & SO_ACCEPTCON) !== 0) return f[6]!;
  }
  throw new Error(`Cannot find a listening socket at ${path} in /proc/net/unix`);
}

/** Whether `pid` holds an fd on the socket with this inode. */
function holds(pid: number, inode: string): boolean {
  return procFds(pid).some((f) => f.target === `socket:[${inode}]`);
}

function readPid(path: string): number {
  return Number(Deno.readTextFileSync(path).trim());
}

interface Sample {
  /** Which loop asked. */
  loop: number;
  /** The pid file's pid, read just before the request. */
  before: number;
  /** The pid the answer names. */
  answer: number;
  /** When the answer came (ms since the loops started), for the failure message. */
  at: number;
}

Deno.test({
  name:
    "handover: across an upgrade status names the old pid until the pid file names the new one, then only the new; the old supervisor closes its control fd",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "ffinet-handover-" });
    const pidfile = `${dir}/serve.pid`;
    const socket = controlSocketPath(pidfile);
    const env = { FFINET_RUNTIME_DIR: dir };
    const pids = new Set<number>();
    try {
      const start = await runCli(
        daemonArgs(freePort(), [
          "--pidfile",
          pidfile,
          "--workers=1",
          "--drain-timeout=6000",
          `--syslog=${dir}/no-syslog`,
          "--",
          "--ignore-term",
        ], NOTIFY_APP),
        env,
      );
      assertEquals(start.code, 0, start.stderr);
      const old = Number(start.stdout.trim());
      pids.add(old);
      for (const c of childrenOf(old)) pids.add(c);
      assertEquals(readPid(pidfile), old);
      const inode = listeningInode(socket);
      assert(holds(old, inode), `the old supervisor holds the control socket (inode ${inode})`);

      const samples: Sample[] = [];
      const errors: string[] = [];
      const t0 = Date.now();
      let polling = true;
      const loop = async (id: number) => {
        while (polling) {
          const before = readPid(pidfile);
          try {
            const reply = await controlRequest(socket, "status", { timeoutMs: 10_000 });
            samples.push({ loop: id, before, answer: reply.pid, at: Date.now() - t0 });
          } catch (e) {
            errors.push((e as Error).message);
            await sleep(5);
          }
        }
      };
      const loops = [loop(0), loop(1)];
      const up = await runCli(["upgrade", "--pidfile", pidfile], env, 120_000);
      // Right after the reply, while the old one drains (its worker ignores
      // SIGTERM for the drain timeout): its copy of the control socket is gone.
      const oldAlive = alive(old);
      const oldHolds = holds(old, inode);
      await sleep(300);
      polling = false;
      await Promise.all(loops);
      assertEquals(up.code, 0, up.stderr);
      const next = readPid(pidfile);
      pids.add(next);
      for (const c of childrenOf(next)) pids.add(c);
      assertNotEquals(next, old, "a new supervisor took over");

      const show = (s: Sample) =>
        `loop ${s.loop} at ${s.at} ms: pid file ${s.before}, answer ${s.answer}`;
      const byOld = samples.filter((s) => s.answer === old).length;
      const byNew = samples.filter((s) => s.answer === next).length;
      console.log(
        `handover: ${samples.length} status answers (${byOld} old, ${byNew} new), ` +
          `${errors.length} errors; pids ${old} -> ${next}`,
      );
      assertEquals(errors, [], "every status was answered");
      assert(byOld > 0 && byNew > 0, `the loops spanned the hand-over: ${byOld} old, ${byNew} new`);
      const strangers = samples.filter((s) => s.answer !== old && s.answer !== next);
      assertEquals(strangers.map(show), [], "answers come from the old or the new supervisor");
      const late = samples.filter((s) => s.before === next && s.answer === old);
      assertEquals(late.map(show), [], "the old pid answered after the new pid file was written");
      // Once the new one has answered a loop, the old one never answers its
      // next requests (each is sent after the previous answer came).
      const relapses = [0, 1].flatMap((id) => {
        const mine = samples.filter((s) => s.loop === id);
        const firstNew = mine.findIndex((s) => s.answer === next);
        return firstNew < 0 ? [] : mine.slice(firstNew).filter((s) => s.answer === old);
      });
      assertEquals(relapses.map(show), [], "the old supervisor answered after the new one");

      assert(oldAlive, "the old supervisor is still draining when the upgrade answers");
      assert(!oldHolds, `the old supervisor (pid ${old}) still holds the control socket`);
      assert(holds(next, inode), "the new supervisor serves the same control socket");

      const stop = await runCli(["stop", "--pidfile", pidfile], env, 60_000);
      assertEquals(stop.code, 0, stop.stderr);
    } finally {
      const all = new Set<number>();
      for (const p of pids) {
        all.add(p);
        if (alive(p)) { for (const c of childrenOf(p)) all.add(c); }
      }
      killAll(all);
      await Deno.remove(dir, { recursive: true });
    }
  },
});

const SUCCESSOR = new URL("./_handover_successor.ts", import.meta.url).pathname;

/** Play the old supervisor: serve a control socket and hand it to `_handover_successor.ts`. */
async function withOldControl(
  fn: (ctl: ControlServer, path: string, inode: string, dir: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "ffinet-handover-" });
  const path = `${dir}/serve.sock`;
  const ctl = ControlServer.listen({ path, handlers: { status: () => ({ old: true }) } });
  try {
    const inode = listeningInode(path);
    assert(holds(Deno.pid, inode), "this process holds the control socket");
    await fn(ctl, path, inode, dir);
  } finally {
    await ctl.close();
    await Deno.remove(dir, { recursive: true });
  }
}

function successor(ctl: ControlServer, args: string[]) {
  return startSuccessor({
    command: Deno.execPath(),
    args: [
      "run",
      "--allow-ffi",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      "--allow-net",
      SUCCESSOR,
      ...args,
    ],
    sockets: [],
    control: ctl,
    env: Deno.env.toObject(),
    timeoutMs: 60_000,
    setsid: false,
  });
}

/** Reap a successor that said it was ready (startSuccessor leaves it to us). */
async function reap(pid: number): Promise<void> {
  let fd: number;
  try {
    fd = pidfdOpen(pid);
  } catch {
    return; // already reaped
  }
  try {
    const end = Date.now() + 30_000;
    while (waitPidfd(fd) === null) {
      if (Date.now() > end) {
        Deno.kill(pid, "SIGKILL");
        continue;
      }
      await sleep(20);
    }
  } finally {
    close(fd);
  }
}

Deno.test(
  "handover: between the hand-over and the new supervisor's accepting, nobody answers on the control socket; then the new one does, and the old one holds no copy",
  { sanitizeOps: true, sanitizeResources: true },
  () =>
    withOldControl(async (ctl, path, inode, dir) => {
      const report = `${dir}/report.json`;
      const { pid } = await successor(ctl, [path, report]);
      try {
        assert(!ctl.accepting, "the old server stopped accepting");
        ctl.handedOver();
        assert(!holds(Deno.pid, inode), "the old supervisor still holds the control socket");
        const seen = JSON.parse(Deno.readTextFileSync(report));
        assertEquals(
          seen.early,
          null,
          `a request sent after the hand-over was answered by pid ${seen.early} before the new supervisor accepted`,
        );
        assertEquals(seen.answeredBy, pid, "the waiting request is answered by the new supervisor");
        assertEquals(seen.self, pid);
      } finally {
        await reap(pid);
      }
    }),
);

Deno.test(
  "handover: a successor that fails after the hand-over leaves the old supervisor answering on the control socket",
  { sanitizeOps: true, sanitizeResources: true },
  () =>
    withOldControl(async (ctl, path, inode, dir) => {
      await assertRejects(
        () => successor(ctl, [path, `${dir}/report.json`, "fail"]),
        Error,
        "exited with code 1",
      );
      assert(!ctl.accepting, "stopped accepting at the hand-over");
      ctl.resumeAccepting();
      assert(ctl.accepting);
      assert(holds(Deno.pid, inode), "the old supervisor kept the control socket");
      const reply = await controlRequest(path, "status", { timeoutMs: 10_000 });
      assertEquals(reply.pid, Deno.pid);
      assertEquals(reply.data, { old: true });
    }),
);
