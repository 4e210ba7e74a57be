/**
 * Shared TLS session ticket keys under the supervisor: 2 worker processes
 * serve HTTPS on one shared socket (`channel_app.ts`); the supervisor makes
 * the ticket keys in memory and hands them to each worker over its channel
 * (`FFINET_CHANNEL_FD`). A Node client that offers its last session on
 * each of 200 connections lands on both workers (the `x-pid` header) and
 * resumes on >= 99 % of them, on both. With a fast rotation, renewed
 * tickets keep resuming on both workers while the first ticket stops
 * resuming (every worker got every rotation). The keys appear in no
 * worker's environment or command line, and in no file of theirs.
 *
 * @module
 */
import { assert, assertEquals } from "@std/assert";
import { Supervisor } from "../../../daemon/supervisor/supervisor.ts";
import { listOpenFds } from "../../../ffi/fd.ts";
import { readProcFile } from "../../../ffi/process.ts";
import { hasCommand, makePki, type TestPki } from "../../tls/_certs.ts";
import { nodeTlsOnce } from "../../tls/_server.ts";
import { runBounded } from "../../_helpers.ts";
import { withSupervisor } from "../fixtures/helpers.ts";

const CHANNEL_APP = new URL("../fixtures/channel_app.ts", import.meta.url).pathname;

interface Result {
  tries: number;
  reused: number;
  /** Pids that answered any connection. */
  pids: string[];
  /** Pids that answered a resumed connection. */
  resumedOn: string[];
  /** Whether the very first ticket still resumed at the end. */
  oldReused: boolean;
}

/**
 * Node clients against `port`: a first full handshake, then at least 200
 * connections (and for `minMs`) each offering the newest ticket, then the
 * first ticket once more.
 */
async function resume(pki: TestPki, port: number, minMs: number): Promise<Result> {
  const script = `
    ${nodeTlsOnce(port, pki.caPath)}
    (async () => {
      const first = await once(undefined);
      const pids = {}, resumedOn = {};
      let reused = 0, tries = 0, session = first.ticket;
      const start = Date.now();
      while (tries < 200 || Date.now() - start < ${minMs}) {
        const r = await once(session);
        const pid = /x-pid: (\\d+)/i.exec(r.response)?.[1] ?? "?";
        tries++;
        pids[pid] = true;
        if (r.reused) { reused++; resumedOn[pid] = true; }
        if (r.ticket) session = r.ticket;
      }
      const old = await once(first.ticket);
      console.log(JSON.stringify({
        tries, reused, pids: Object.keys(pids).sort(), resumedOn: Object.keys(resumedOn).sort(),
        oldReused: old.reused,
      }));
    })().catch((e) => { console.error(e.message); process.exit(1); });`;
  const out = await runBounded("node", { args: ["-e", script] }, 120_000);
  assertEquals(out.code, 0, out.stderr);
  return JSON.parse(out.stdout) as Result;
}

/** A supervisor of 2 HTTPS workers of channel_app.ts on a fresh port, around `body`. */
function withHttpsWorkers(
  pki: TestPki,
  rotationMs: number,
  body: (port: number, sup: Supervisor) => Promise<void>,
): Promise<void> {
  return withSupervisor({
    app: CHANNEL_APP,
    workers: 2,
    env: { FFINET_TEST_CERT: pki.certPath, FFINET_TEST_KEY: pki.keyPath },
    ticketKeyRotationMs: rotationMs,
    startTimeoutMs: 30_000,
  }, body);
}

Deno.test({
  name:
    "supervisor tls: 2 worker processes share ticket keys; >= 99 % of 200 sessions resume, on both",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn() {
    if (!(await hasCommand("node"))) {
      console.log("skip: supervisor ticket keys: node is not installed");
      return;
    }
    const pki = await makePki();
    try {
      await withHttpsWorkers(pki, 3_600_000, async (port, sup) => {
        const workers = sup.pids;
        assertEquals(workers.length, 2);
        // The keys travel on the channel only: not in the environment, the
        // command line, or a file the worker has open.
        for (const pid of workers) {
          const environ = readProcFile(`/proc/${pid}/environ`).split("\0");
          const fdVar = environ.find((v) => v.startsWith("FFINET_CHANNEL_FD="));
          assert(fdVar !== undefined && /^FFINET_CHANNEL_FD=\d+$/.test(fdVar), String(fdVar));
          const fd = Number(fdVar!.split("=")[1]);
          const target = listOpenFds(pid).get(fd) ?? "";
          assert(/^socket:\[\d+\]$/.test(target), `fd ${fd} of ${pid} is ${target}`);
          for (const [, t] of listOpenFds(pid)) {
            assert(!/ticket|key/i.test(t) || t === pki.keyPath, `worker ${pid} holds ${t}`);
          }
        }
        const r = await resume(pki, port, 0);
        console.log(
          `resumed ${r.reused} of ${r.tries} across worker processes ${r.pids.join(", ")} ` +
            `(resumed on ${r.resumedOn.join(", ")})`,
        );
        assertEquals(r.pids.length, 2, `every connection landed on ${r.pids}: need both workers`);
        assert(r.reused >= 0.99 * r.tries, `only ${r.reused} of ${r.tries} resumed`);
        assertEquals(r.resumedOn, r.pids, "sessions resume on both worker processes");
        assert(r.oldReused, "no rotation within the hour: the first ticket still resumes");
      });
    } finally {
      await pki.remove();
    }
  },
});

Deno.test({
  name:
    "supervisor tls: the supervisor's rotation reaches every worker (renewed tickets resume on both, the first one expires)",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn() {
    if (!(await hasCommand("node"))) {
      console.log("skip: supervisor ticket rotation: node is not installed");
      return;
    }
    const pki = await makePki();
    try {
      await withHttpsWorkers(pki, 400, async (port) => {
        const r = await resume(pki, port, 2500);
        console.log(
          `resumed ${r.reused} of ${r.tries} across ${
            r.pids.join(", ")
          } while rotating every 400 ms`,
        );
        assert(!r.oldReused, "the first ticket still resumed: the keys did not rotate");
        // A worker that missed a rotation would refuse the renewed tickets
        // made by the other one (a full handshake instead).
        assert(r.reused >= 0.95 * r.tries, `only ${r.reused} of ${r.tries} resumed`);
        assertEquals(r.resumedOn.length, 2, `resumed on ${r.resumedOn}: both must resume`);
      });
    } finally {
      await pki.remove();
    }
  },
});
