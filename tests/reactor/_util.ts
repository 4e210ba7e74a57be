/**
 * Helpers for the reactor tests: real fd pairs, fd-number reuse, and running
 * a reactor for a bounded time.
 *
 * @module
 */
import { Socket } from "../../ffi/socket.ts";
import { closeFd, setNonBlocking } from "../../ffi/fd.ts";
import type { InetAddress } from "../../ffi/sockaddr.ts";
import { Reactor } from "../../reactor/mod.ts";
import { waitFor } from "../_helpers.ts";

/**
 * Open fds with `open` until one gets the number `fd` (Linux hands out the
 * lowest free number, so holes below it are filled first), close the extras,
 * and return it. Throws if the number never comes back.
 */
export function reopenAt(fd: number, open: () => number): number {
  const extras: number[] = [];
  try {
    for (let i = 0; i < 1000; i++) {
      const got = open();
      if (got === fd) return got;
      extras.push(got);
      if (got > fd) break;
    }
    throw new Error(`Cannot reopen fd ${fd}: the number was taken by someone else`);
  } finally {
    for (const e of extras) closeFd(e);
  }
}

/**
 * A connected loopback TCP pair `[client, server]`, both non-blocking. The
 * listener is closed before returning.
 */
export async function tcpPair(): Promise<[Socket, Socket]> {
  using listener = Socket.create("inet", "stream");
  listener.bind({ family: "inet", address: "127.0.0.1", port: 0 });
  listener.listen(4);
  const addr = listener.localAddress() as InetAddress;
  // A blocking connect returns once the handshake is done; then go non-blocking.
  const client = Socket.create("inet", "stream", { nonblocking: false });
  let server: Socket | null = null;
  try {
    client.connect(addr);
    await waitFor(() => (server = listener.accept()) !== null, 2000, "the accepted connection");
    setNonBlocking(client.fd, true);
    return [client, server!];
  } catch (e) {
    client.close();
    (server as Socket | null)?.close();
    throw e;
  }
}

/**
 * Run `reactor` until `stop()` or at most `ms` milliseconds, whichever comes
 * first; resolves (or rejects) with `run()`.
 */
export async function runFor(reactor: Reactor, ms: number): Promise<void> {
  const guard = reactor.setTimeout(() => reactor.stop(), ms);
  try {
    await reactor.run();
  } finally {
    guard.cancel();
  }
}

/** Bytes of a string. */
export function bytes(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

/** A string of bytes. */
export function text(buf: Uint8Array, n = buf.byteLength): string {
  return new TextDecoder().decode(buf.subarray(0, n));
}

/**
 * Run `fn` while counting the SIGPIPEs this process gets: Deno ignores
 * SIGPIPE by default, which would hide a write without MSG_NOSIGNAL; a
 * listener makes any SIGPIPE the kernel raises visible.
 */
export async function withSigpipeCount(
  fn: (sigpipes: () => number) => Promise<void>,
): Promise<void> {
  let sigpipes = 0;
  const onSigpipe = () => sigpipes++;
  Deno.addSignalListener("SIGPIPE", onSigpipe);
  try {
    await fn(() => sigpipes);
  } finally {
    Deno.removeSignalListener("SIGPIPE", onSigpipe);
  }
}

/**
 * A blocking connect to 127.0.0.1:`port` (from `src`, when given, as the
 * local address), then made non-blocking.
 */
export function connectLoopback(port: number, src?: string): Socket {
  const s = Socket.create("inet", "stream", { nonblocking: false });
  try {
    if (src !== undefined) s.bind({ family: "inet", address: src, port: 0 });
    s.connect({ family: "inet", address: "127.0.0.1", port });
    setNonBlocking(s.fd, true);
    return s;
  } catch (e) {
    s.close();
    throw e;
  }
}

/** Options for {@linkcode onReactor}. */
export interface OnReactorOptions {
  /** Fail after this long (default 20 s). */
  limitMs?: number | undefined;
  /** After `fn`, wait for every registration (connections still closing) to go. */
  awaitRegistrations?: boolean;
}

/**
 * Run `fn` with a new running reactor, for at most `limitMs`; then stop and
 * close the reactor. A callback that throws (or the reactor stopping early)
 * fails the test.
 */
export async function onReactor(
  fn: (reactor: Reactor) => Promise<void>,
  options: OnReactorOptions = {},
): Promise<void> {
  const limitMs = options.limitMs ?? 20_000;
  // Callback errors no longer stop a reactor (they go to onError): fail the test with them.
  let failCallback: (e: unknown) => void = () => {};
  const callbackFailed = new Promise<never>((_, reject) => {
    failCallback = reject;
  });
  const reactor = new Reactor({ onError: (e) => failCallback(e) });
  const running = reactor.run();
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      fn(reactor).then(() =>
        options.awaitRegistrations
          ? waitFor(() => reactor.stats.registrations === 0, 3000, "every registration to close")
          : undefined
      ),
      running.then(() => {
        throw new Error("the reactor stopped early");
      }),
      callbackFailed,
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`Timed out after ${limitMs} ms`)), limitMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
    reactor.stop();
    await running;
    reactor.close();
  }
}

/**
 * Run `fn` with a watchdog thread: if `fn` has not finished after `ms`, the
 * watchdog prints why and kills this process with SIGKILL. A bug that spins
 * the reactor synchronously (no `await` ever returns, so no timer of this
 * thread can fire) then fails the suite instead of hanging it.
 */
export async function withWatchdog<T>(ms: number, what: string, fn: () => Promise<T>): Promise<T> {
  const done = new Int32Array(new SharedArrayBuffer(4));
  const code = `self.onmessage = (e) => {
    const [done, ms, what] = e.data;
    if (Atomics.wait(done, 0, 0, ms) === "timed-out") {
      console.error("watchdog: " + what + " did not finish within " + ms + " ms (a synchronous spin?): killing the test process");
      Deno.kill(Deno.pid, "SIGKILL");
    }
    self.close();
  };`;
  const worker = new Worker(`data:application/javascript,${encodeURIComponent(code)}`, {
    type: "module",
  });
  worker.postMessage([done, ms, what]);
  try {
    return await fn();
  } finally {
    Atomics.store(done, 0, 1);
    Atomics.notify(done, 0);
    worker.terminate();
  }
}
