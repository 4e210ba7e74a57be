/**
 * `_serve_child.ts` (an HTTPS `serve()`) in its own process, watched from
 * outside: its CPU time and RSS come from /proc/<pid>/stat, so that what
 * a test's clients cost is not counted.
 *
 * @module
 */
import { readProcFile } from "../../ffi/process.ts";
import { spawnWorkersChild } from "../http/_serve.ts";
import type { TestPki } from "./_certs.ts";

/** Clock ticks per second of /proc/<pid>/stat's times (USER_HZ, 100 on Linux). */
const TICKS_PER_SECOND = 100;
/** Page size of /proc/<pid>/stat's RSS. */
const PAGE_BYTES = 4096;

/** A running HTTPS server process. */
export interface ChildServer {
  pid: number;
  port: number;
  /** User + system CPU the process used so far, in milliseconds (10 ms steps). */
  cpuMs(): number;
  /** Its resident set, in KiB. */
  rssKiB(): number;
  /** SIGTERM, then SIGKILL after 5 s; resolves when it has exited. */
  stop(): Promise<void>;
}

/** The fields of /proc/<pid>/stat after the command name (field 3 onwards). */
function statFields(pid: number): string[] {
  const text = readProcFile(`/proc/${pid}/stat`);
  return text.slice(text.lastIndexOf(")") + 2).split(" ");
}

/**
 * Start `_serve_child.ts` with the test PKI's server certificate and
 * `env`; resolves once every one of `listeners` has printed its port.
 * `shell` (e.g. `ulimit -n 20000 &&`) runs before it, in `sh -c … exec`.
 */
export async function startChildServer(
  pki: TestPki,
  env: Record<string, string> = {},
  { listeners = 1, shell }: { listeners?: number; shell?: string } = {},
): Promise<ChildServer> {
  const child = spawnWorkersChild(new URL("./_serve_child.ts", import.meta.url), [], {
    env: { FFINET_TLS_CERT: pki.certPath, FFINET_TLS_KEY: pki.keyPath, ...env },
    permissions: ["--allow-all"],
    shell,
  });
  const stop = async () => {
    try {
      await child.stop(5000);
    } catch { /* still running after 5 s: close() kills it */ }
    await child.close();
  };
  try {
    await child.waitOutput(/^listening /m, listeners, "the server to listen", "stdout", 60_000);
  } catch (e) {
    await stop();
    throw e;
  }
  const port = Number(/^listening (\d+)/m.exec(child.stdout())![1]);
  const pid = child.pid;
  return {
    pid,
    port,
    cpuMs() {
      const f = statFields(pid);
      // utime and stime are fields 14 and 15 (index 11 and 12 after the name).
      return (Number(f[11]) + Number(f[12])) * 1000 / TICKS_PER_SECOND;
    },
    rssKiB() {
      return Number(statFields(pid)[21]) * PAGE_BYTES / 1024;
    },
    stop,
  };
}
