/**
 * The public surface: what `mod.ts` and `reactor/mod.ts` export (and what
 * they must not), internals unreachable from the objects users hold, and
 * `using` on every resource.
 */
import { assert, assertEquals, assertFalse, assertThrows } from "@std/assert";
import * as root from "../../mod.ts";
import * as reactorMod from "../../reactor/mod.ts";
import { Socket } from "../../ffi/socket.ts";
import { closeFd, eventfd } from "../../ffi/fd.ts";
import type { InetAddress } from "../../ffi/sockaddr.ts";
import { connect, DatagramSocket, Interest, Listener } from "../../reactor/mod.ts";
import { waitFor, withFdCheck } from "../_helpers.ts";
import type { ListenerPassthrough } from "../../http/types.ts";
import type { ListenerSettings, ListenSocketOptions } from "../../reactor/mod.ts";
import { Reactor } from "../../reactor/mod.ts";
import { onReactor } from "./_util.ts";

const INTERNAL_NAMES = [
  "sys",
  "libc",
  "symbols",
  "errnoCell",
  "Poller",
  "TimerQueue",
  "RegistryHooks",
  "registrationControl",
  "connectionControl",
  "reactorControl",
  "RegistrationTable",
  "resolveConnectionOptions",
  "validateInterest",
  "hasEvents",
  "LOG_KERN",
  "LOG_ERR",
  "encodeSockaddr",
  "decodeSockaddr",
  "Msghdr",
  "IovecArray",
];

Deno.test("surface: mod.ts names its exports; raw ffi access and internals are not among them", () => {
  const names = Object.keys(root);
  for (const name of INTERNAL_NAMES) {
    assertFalse(names.includes(name), `mod.ts exports the internal ${name}`);
    assertFalse(Object.keys(reactorMod).includes(name), `reactor/mod.ts exports ${name}`);
  }
  for (
    const name of [
      "Reactor",
      "Interest",
      "Readiness",
      "Socket",
      "Listener",
      "Connection",
      "connect",
      "DatagramSocket",
      "ErrnoError",
      "AddressLookupError",
      "Registration",
      "Timer",
      "listenFds",
      "notify",
    ]
  ) {
    assert(names.includes(name), `mod.ts lacks ${name}`);
  }
  assert(names.length < 60, `mod.ts exports ${names.length} values: curate it`);
  // One connect: the reactor's.
  assertEquals(root.connect, connect);
});

Deno.test("surface: the objects users hold expose no underscore internals", () =>
  withFdCheck(async () => {
    await onReactor(async (reactor) => {
      const efd = eventfd();
      using reg = reactor.register(efd, Interest.READABLE, () => {});
      using timer = reactor.setTimeout(() => {}, 10_000);
      using listener = Listener.listen(reactor, { host: "127.0.0.1", port: 0 });
      using udp = DatagramSocket.open(reactor, { bind: { host: "127.0.0.1", port: 0 } });
      const port = (listener.address() as InetAddress).port;
      using conn = await connect(reactor, { host: "127.0.0.1", port });
      for (const obj of [reg, timer, listener, udp, conn, reactor]) {
        const proto = Object.getPrototypeOf(obj);
        const keys = [
          ...Object.getOwnPropertyNames(obj),
          ...Object.getOwnPropertyNames(proto),
          ...Object.getOwnPropertySymbols(proto).map(String),
        ];
        const leaked = keys.filter((k) =>
          k.startsWith("_") || ["attach", "fired", "markStale", "ready", "accept"].includes(k)
        );
        assertEquals(leaked, [], `${proto.constructor.name} exposes ${leaked}`);
      }
      reg.deregister();
      closeFd(efd);
    });
  }));

Deno.test("surface: `using` closes connections, listeners, datagram sockets, registrations and timers", () =>
  withFdCheck(async () => {
    await onReactor(async (reactor) => {
      let listenerRef: Listener;
      let udpRef: DatagramSocket;
      let fired = false;
      {
        using listener = Listener.listen(reactor, { host: "127.0.0.1", port: 0 });
        using udp = DatagramSocket.open(reactor, { bind: { host: "127.0.0.1", port: 0 } });
        using _timer = reactor.setTimeout(() => fired = true, 1);
        listenerRef = listener;
        udpRef = udp;
      }
      assert(listenerRef.closed);
      assertThrows(() => udpRef.socket.fd, Error, "closed");
      const [a, b] = Socket.pair();
      let closedConn = false;
      {
        using conn = new root.Connection(reactor, a);
        conn.onClose = () => closedConn = true;
      }
      assert(closedConn, "using did not close the connection");
      b.close();
      const efd = eventfd();
      let regRef: root.Registration<undefined>;
      {
        using reg = reactor.register(efd, Interest.READABLE, () => {});
        regRef = reg;
      }
      assertFalse(regRef.registered, "using did not deregister");
      closeFd(efd);
      await waitFor(() => reactor.stats.registrations === 0, 2000, "registrations to go");
      assertFalse(fired, "a disposed timer fired");
    });
  }));

Deno.test("surface: http's listener passthrough is derived from the reactor's listener settings", () => {
  // Compile-time: every listener setting but reusePort (ServeOptions has its
  // own) is a passthrough option, with the same type, and nothing else is.
  type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
  const derived: Same<
    Required<ListenerPassthrough>,
    Required<Omit<ListenerSettings, "reusePort">>
  > = true;
  const socketOptions: Same<
    Pick<Required<ListenerPassthrough>, Exclude<keyof ListenSocketOptions, "reusePort">>,
    Required<Omit<ListenSocketOptions, "reusePort">>
  > = true;
  assert(derived && socketOptions);
  // Runtime: each listening-socket option is checked by name, before any socket.
  const reactorForChecks = new Reactor();
  for (
    const [name, bad] of [
      ["reuseAddress", 1],
      ["reusePort", "yes"],
      ["v6Only", 0],
      ["deferAccept", -1],
      ["fastOpen", 1.5],
      ["incomingCpu", 2 ** 20],
    ] as const
  ) {
    const e = assertThrows(() => Listener.listen(reactorForChecks, { port: 0, [name]: bad }));
    assert(String((e as Error).message).includes(name), `${name}: ${(e as Error).message}`);
  }
  reactorForChecks.close();
});
