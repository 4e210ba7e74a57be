/**
 * A stand-in for the new supervisor of an upgrade, started by
 * `startSuccessor` in `handover_test.ts` (the test process plays the old
 * supervisor): it takes the control socket and the hand-over pipe from
 * `LISTEN_FDS`, waits for the hand-over, and then, before it accepts
 * itself, sends `ping` on the control socket and waits 500 ms: nobody may
 * answer (the old supervisor stopped accepting). Then it serves the socket,
 * which answers that same waiting request, writes what it saw as JSON to
 * REPORT, sends `READY=1` and exits.
 *
 * `deno run … _handover_successor.ts SOCKET_PATH REPORT [fail]`: with
 * `fail` it exits 1 right after the hand-over instead (the old supervisor
 * must then accept again).
 *
 * @module
 */
import { controlRequest, ControlServer } from "../../../daemon/control.ts";
import {
  awaitHandOver,
  CONTROL_FD_NAME,
  HANDOVER_FD_NAME,
} from "../../../daemon/supervisor/upgrade.ts";
import { notify, parseListenFds } from "../../../reactor/sd_notify.ts";

const [path, report, mode] = Deno.args;
if (path === undefined || report === undefined) throw new Error("usage: SOCKET_PATH REPORT [fail]");
const fds = parseListenFds(Deno.env.toObject(), Deno.pid);
const control = fds.find((f) => f.name === CONTROL_FD_NAME)?.fd;
const handOver = fds.find((f) => f.name === HANDOVER_FD_NAME)?.fd;
if (control === undefined || handOver === undefined) {
  throw new Error(`no control socket or hand-over pipe in ${JSON.stringify(fds)}`);
}
await awaitHandOver(handOver, 30_000);
if (mode === "fail") Deno.exit(1);
const waiting = controlRequest(path, "ping", { timeoutMs: 20_000 });
let timer: ReturnType<typeof setTimeout> | undefined;
const early = await Promise.race([
  waiting.then((r) => r.pid),
  new Promise<null>((r) => timer = setTimeout(() => r(null), 500)),
]);
clearTimeout(timer);
const server = ControlServer.listen({ path, fd: control, handlers: {} });
const answeredBy = (await waiting).pid;
Deno.writeTextFileSync(report, JSON.stringify({ early, answeredBy, self: Deno.pid }));
notify({ READY: "1" });
await server.close();
