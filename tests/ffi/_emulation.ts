/**
 * What the tests can do when `.ci/aarch64` runs them under qemu-user
 * (`FFINET_EMULATED=qemu`), and the printed skip for what they cannot.
 */
import { listOpenFds } from "../../ffi/fd.ts";

function env(name: string): string | undefined {
  return Deno.permissions.querySync({ name: "env", variable: name }).state === "granted"
    ? Deno.env.get(name)
    : undefined;
}

/** `"qemu"` under `.ci/aarch64`'s emulation, else undefined. */
export const EMULATED: string | undefined = env("FFINET_EMULATED");

/** Why `recvmsg` cannot be trusted to set MSG_CTRUNC here, or null. */
export const CTRUNC_SKIP: string | null = EMULATED === "qemu"
  ? "qemu-user's recvmsg never sets MSG_CTRUNC"
  : null;

/**
 * Why a test cannot spawn `Deno.execPath()` here, or null: under qemu-user
 * the arm64 deno only starts in a child when a binfmt_misc handler runs it
 * (`.ci/aarch64` then sets FFINET_EMULATED_SPAWN=1).
 */
export const DENO_SPAWN_SKIP: string | null =
  EMULATED === "qemu" && env("FFINET_EMULATED_SPAWN") !== "1"
    ? "under qemu-user without a binfmt_misc handler for aarch64, Deno.execPath() cannot be spawned"
    : null;

/** `true` (and a printed "skip: <test>: <reason>") when `reason` is set. */
export function skipped(test: string, reason: string | null): boolean {
  if (reason !== null) console.log(`skip: ${test}: ${reason}`);
  return reason !== null;
}

/**
 * How much longer time-calibrated bounds get here: 1 natively (the bounds
 * stay exactly as written), 5 under qemu-user, where code runs about 10x
 * slower and a first call can spend tens of ms being compiled.
 * `FFINET_TIME_SCALE` overrides it (a positive number).
 */
export const TIME_SCALE: number = (() => {
  const forced = Number(env("FFINET_TIME_SCALE"));
  if (Number.isFinite(forced) && forced > 0) return forced;
  return EMULATED === "qemu" ? 5 : 1;
})();

/** A duration (ms) or an upper time bound scaled by {@linkcode TIME_SCALE}. */
export function scaled(ms: number): number {
  return Math.round(ms * TIME_SCALE);
}

/**
 * A lower bound on how often something happens in a fixed time, divided by
 * {@linkcode TIME_SCALE} (at least 1): unchanged natively.
 */
export function atLeast(count: number): number {
  return Math.max(1, Math.floor(count / TIME_SCALE));
}

/**
 * Open fds for a before/after count around reactor work. Natively: every fd.
 * Emulated: every fd but epoll fds and timerfds, because a reactor opens its
 * two yield fds (an epoll set and a timerfd) lazily, the first time a busy
 * slice yields to Deno, and emulated that first yield lands inside the test's
 * counting window. `withFdCheck` still counts every fd once the reactor is closed.
 */
export function countFdsAroundReactor(): number {
  const fds = listOpenFds();
  if (EMULATED === undefined) return fds.size;
  let n = 0;
  for (const target of fds.values()) {
    if (target !== "anon_inode:[eventpoll]" && target !== "anon_inode:[timerfd]") n++;
  }
  return n;
}

/**
 * Why `posix_spawn` cannot report a failed exec (ENOENT) here, or null:
 * qemu-user runs its CLONE_VM|CLONE_VFORK child as a plain fork, so the
 * child's exec error never reaches the parent (the child exits 127 instead).
 */
export const SPAWN_EXEC_ERROR_SKIP: string | null = EMULATED === "qemu"
  ? "qemu-user runs posix_spawn's CLONE_VM|CLONE_VFORK child as a plain fork, so its exec error (ENOENT) never reaches the parent"
  : null;

/**
 * Why `SO_INCOMING_CPU` cannot be set here, or null: qemu-user (7.2) does not
 * translate that socket option, so `setsockopt(SOL_SOCKET, SO_INCOMING_CPU=49)`
 * fails with ENOPROTOOPT under it (the same call succeeds natively).
 */
export const INCOMING_CPU_SKIP: string | null = EMULATED === "qemu"
  ? "qemu-user does not translate SO_INCOMING_CPU: setsockopt(SOL_SOCKET, 49) gives ENOPROTOOPT under it"
  : null;
