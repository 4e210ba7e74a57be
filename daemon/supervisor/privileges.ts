/**
 * Privilege drop for supervised workers. A worker given `user`/`group` is
 * started through util-linux `setpriv --reuid=U --regid=G --clear-groups
 * --no-new-privs`, so it is never root even for an instant of its own code,
 * and an app that ignores the drop still is not root; `NoNewPrivs` stops
 * set-uid programs from giving root back. It also gets a Deno cache of its
 * own (`DENO_DIR`, owned by that user, mode 0700), so it holds no
 * read-write fds into root's cache.
 *
 * @example
 * ```ts
 * import { resolveDrop } from "./privileges.ts";
 * function dropTarget() {
 *   return resolveDrop("nobody", undefined); // { uid: 65534, gid: 65534, ... } (needs root)
 * }
 * ```
 *
 * @module
 */

/** Who the workers run as. */
export interface PrivilegeDrop {
  /** The user id. */
  uid: number;
  /** The group id. */
  gid: number;
  /** The user's name, or the number as text. */
  userName: string;
  /** The path of `setpriv`. */
  setpriv: string;
  /** The user's home directory from `/etc/passwd`, or `/` when it has none. */
  home: string;
}

function readTable(path: string): string[][] {
  try {
    return Deno.readTextFileSync(path).split("\n").filter((l) => l !== "" && !l.startsWith("#"))
      .map((l) => l.split(":"));
  } catch {
    return [];
  }
}

const ID = /^[0-9]{1,10}$/;

/**
 * `user`/`group` (names or ids) as numbers, after checking that `setpriv`
 * exists. The group defaults to the user's primary group. Throws
 * `RangeError` for a `group` without `user`, an unknown name, and `Error`
 * when `setpriv` is missing or this process is not root.
 *
 * @example
 * ```ts
 * import { resolveDrop } from "./privileges.ts";
 * console.log(resolveDrop(undefined, undefined)); // null: nothing to drop
 * function asNobody() {
 *   return resolveDrop(65534, 65534); // needs root and setpriv
 * }
 * ```
 */
export function resolveDrop(
  user: string | number | undefined,
  group: string | number | undefined,
): PrivilegeDrop | null {
  if (user === undefined) {
    if (group !== undefined) {
      throw new RangeError(
        "Cannot create supervisor: group without user would keep the workers' uid 0; give user too",
      );
    }
    return null;
  }
  const passwd = readTable("/etc/passwd");
  let uid: number;
  let gid: number | undefined;
  let userName = String(user);
  let home = "/";
  if (typeof user === "number" || ID.test(user)) {
    uid = Number(user);
    if (!Number.isInteger(uid) || uid < 0 || uid > 0xfffffffe) {
      throw new RangeError(`Cannot create supervisor: user ${user} is not a valid uid`);
    }
    const row = passwd.find((r) => Number(r[2]) === uid);
    if (row !== undefined) {
      gid = Number(row[3]);
      userName = row[0]!;
      home = row[5] || "/";
    }
  } else {
    const row = passwd.find((r) => r[0] === user);
    if (row === undefined) throw new RangeError(`Cannot create supervisor: no user "${user}"`);
    uid = Number(row[2]);
    gid = Number(row[3]);
    home = row[5] || "/";
  }
  if (group !== undefined) {
    if (typeof group === "number" || ID.test(group)) {
      gid = Number(group);
      if (!Number.isInteger(gid) || gid < 0 || gid > 0xfffffffe) {
        throw new RangeError(`Cannot create supervisor: group ${group} is not a valid gid`);
      }
    } else {
      const row = readTable("/etc/group").find((r) => r[0] === group);
      if (row === undefined) throw new RangeError(`Cannot create supervisor: no group "${group}"`);
      gid = Number(row[2]);
    }
  }
  if (gid === undefined) {
    throw new RangeError(
      `Cannot create supervisor: uid ${uid} has no passwd entry; give group explicitly`,
    );
  }
  const setpriv = ["/usr/bin/setpriv", "/bin/setpriv", "/usr/sbin/setpriv"].find((p) => {
    try {
      return Deno.statSync(p).isFile;
    } catch {
      return false;
    }
  });
  if (setpriv === undefined) {
    throw new Error(
      "Cannot drop privileges: setpriv (util-linux) is not installed; install util-linux or run without user/group",
    );
  }
  return { uid, gid, userName, setpriv, home };
}

/**
 * The `setpriv` argument vector that runs `command` as the dropped user.
 *
 * @example
 * ```ts
 * import { setprivArgs } from "./privileges.ts";
 * setprivArgs({ uid: 1, gid: 2, userName: "x", setpriv: "/usr/bin/setpriv", home: "/" });
 * // ["--reuid=1", "--regid=2", "--clear-groups", "--no-new-privs", "--"]
 * ```
 */
export function setprivArgs(drop: PrivilegeDrop): string[] {
  return [
    `--reuid=${drop.uid}`,
    `--regid=${drop.gid}`,
    "--clear-groups",
    "--no-new-privs",
    "--",
  ];
}

/**
 * Make (or check) the dropped workers' `DENO_DIR`: a directory owned by the
 * user, mode 0700. An existing `path` must be a real directory (not a
 * symlink) owned by that user and not writable by group or others. Without
 * `path` a private temporary one is created; `temporary` says to remove it.
 *
 * @example
 * ```ts
 * import { prepareDenoDir, type PrivilegeDrop } from "./privileges.ts";
 * function denoDirFor(drop: PrivilegeDrop): string {
 *   const { path, temporary } = prepareDenoDir(drop, undefined);
 *   if (temporary) console.log(`remove ${path} when done`);
 *   return path;
 * }
 * ```
 */
export function prepareDenoDir(
  drop: PrivilegeDrop,
  path: string | undefined,
): { path: string; temporary: boolean } {
  if (path === undefined) {
    const dir = Deno.makeTempDirSync({ prefix: `ffinet-deno-${drop.uid}-` });
    Deno.chmodSync(dir, 0o700);
    Deno.chownSync(dir, drop.uid, drop.gid);
    return { path: dir, temporary: true };
  }
  let st: Deno.FileInfo | null = null;
  try {
    st = Deno.lstatSync(path);
  } catch { /* create it */ }
  if (st === null) {
    Deno.mkdirSync(path, { recursive: true, mode: 0o700 });
    Deno.chownSync(path, drop.uid, drop.gid);
    return { path, temporary: false };
  }
  if (!st.isDirectory || st.isSymlink) {
    throw new Error(`Cannot use DENO_DIR ${path}: not a directory`);
  }
  if (st.uid !== drop.uid) {
    throw new Error(`Cannot use DENO_DIR ${path}: owned by uid ${st.uid}, not ${drop.uid}`);
  }
  if (((st.mode ?? 0) & 0o022) !== 0) {
    throw new Error(`Cannot use DENO_DIR ${path}: writable by group or others`);
  }
  return { path, temporary: false };
}
