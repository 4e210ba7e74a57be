/**
 * Linux constants for sockets, epoll, fcntl, rlimits and signals, for the
 * architectures ffinet supports (x86_64 and aarch64). Where the two differ the
 * value is chosen by `Deno.build.arch`.
 *
 * @module
 */

const ARM = Deno.build.arch === "aarch64";

/** Address families. @example `AF.INET` */
export const AF = { UNSPEC: 0, UNIX: 1, INET: 2, INET6: 10 } as const;

/** Socket types and their creation flags. @example `SOCK.STREAM | SOCK.NONBLOCK` */
export const SOCK = {
  STREAM: 1,
  DGRAM: 2,
  RAW: 3,
  SEQPACKET: 5,
  NONBLOCK: 0o4000,
  CLOEXEC: 0o2000000,
} as const;

/** Protocol levels for socket options. @example `SOL.SOCKET` */
export const SOL = { SOCKET: 1, IP: 0, TCP: 6, UDP: 17, IPV6: 41 } as const;

/** `SOL_SOCKET` option names. @example `SO.REUSEPORT` */
export const SO = {
  DEBUG: 1,
  REUSEADDR: 2,
  TYPE: 3,
  ERROR: 4,
  DONTROUTE: 5,
  BROADCAST: 6,
  SNDBUF: 7,
  RCVBUF: 8,
  KEEPALIVE: 9,
  OOBINLINE: 10,
  LINGER: 13,
  REUSEPORT: 15,
  PASSCRED: 16,
  PEERCRED: 17,
  RCVLOWAT: 18,
  SNDLOWAT: 19,
  RCVTIMEO: 20,
  SNDTIMEO: 21,
  ACCEPTCONN: 30,
  PROTOCOL: 38,
  DOMAIN: 39,
} as const;

/** `IPPROTO_TCP` option names. @example `TCP.NODELAY` */
export const TCP = {
  NODELAY: 1,
  MAXSEG: 2,
  KEEPIDLE: 4,
  KEEPINTVL: 5,
  KEEPCNT: 6,
} as const;

/** `IPPROTO_IPV6` option names. @example `IPV6.V6ONLY` */
export const IPV6 = { V6ONLY: 26 } as const;

/** Flags for send/recv. @example `MSG.NOSIGNAL` */
export const MSG = {
  OOB: 1,
  PEEK: 2,
  DONTWAIT: 0x40,
  TRUNC: 0x20,
  CTRUNC: 0x8,
  WAITALL: 0x100,
  NOSIGNAL: 0x4000,
  CMSG_CLOEXEC: 0x40000000,
} as const;

/** `shutdown(2)` directions. @example `SHUT.WR` */
export const SHUT = { RD: 0, WR: 1, RDWR: 2 } as const;

/** Ancillary message types. @example `SCM.RIGHTS` */
export const SCM = { RIGHTS: 1, CREDENTIALS: 2 } as const;

/** epoll event bits and flags. @example `EPOLL.IN | EPOLL.ET` */
export const EPOLL = {
  IN: 0x001,
  PRI: 0x002,
  OUT: 0x004,
  ERR: 0x008,
  HUP: 0x010,
  RDNORM: 0x040,
  RDBAND: 0x080,
  WRNORM: 0x100,
  WRBAND: 0x200,
  MSG: 0x400,
  RDHUP: 0x2000,
  EXCLUSIVE: 1 << 28,
  WAKEUP: 1 << 29,
  ONESHOT: 1 << 30,
  ET: 1 << 31,
  CLOEXEC: 0o2000000,
  CTL_ADD: 1,
  CTL_DEL: 2,
  CTL_MOD: 3,
} as const;

/** `fcntl(2)` commands and fd flags. @example `F.GETFL` */
export const F = {
  DUPFD: 0,
  GETFD: 1,
  SETFD: 2,
  GETFL: 3,
  SETFL: 4,
  DUPFD_CLOEXEC: 1030,
  FD_CLOEXEC: 1,
} as const;

/** `open(2)` flags. @example `O.RDONLY | O.CLOEXEC` */
export const O = {
  RDONLY: 0,
  WRONLY: 1,
  RDWR: 2,
  CREAT: 0o100,
  EXCL: 0o200,
  NOCTTY: 0o400,
  TRUNC: 0o1000,
  APPEND: 0o2000,
  NONBLOCK: 0o4000,
  DIRECTORY: ARM ? 0o40000 : 0o200000,
  NOFOLLOW: ARM ? 0o100000 : 0o400000,
  CLOEXEC: 0o2000000,
  PATH: 0o10000000,
} as const;

/** `flock(2)` operations. @example `LOCK.EX | LOCK.NB` */
export const LOCK = { SH: 1, EX: 2, NB: 4, UN: 8 } as const;

/** eventfd flags. @example `EFD.NONBLOCK | EFD.CLOEXEC` */
export const EFD = { SEMAPHORE: 1, NONBLOCK: 0o4000, CLOEXEC: 0o2000000 } as const;

/** timerfd flags and clocks. @example `TFD.NONBLOCK` */
export const TFD = {
  NONBLOCK: 0o4000,
  CLOEXEC: 0o2000000,
  TIMER_ABSTIME: 1,
  CLOCK_REALTIME: 0,
  CLOCK_MONOTONIC: 1,
} as const;

/** `ioctl(2)` requests. @example `IOCTL.FIONREAD` */
export const IOCTL = { FIONREAD: 0x541b } as const;

/** `getrlimit(2)` resources. @example `RLIMIT.NOFILE` */
export const RLIMIT = { CORE: 4, NOFILE: 7, NPROC: 6 } as const;

/** Signal numbers. @example `SIG.TERM` */
export const SIG = {
  HUP: 1,
  INT: 2,
  QUIT: 3,
  KILL: 9,
  USR1: 10,
  USR2: 12,
  PIPE: 13,
  ALRM: 14,
  TERM: 15,
  CHLD: 17,
  CONT: 18,
  STOP: 19,
} as const;
