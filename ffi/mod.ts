/**
 * The ffi layer: libc through one `Deno.dlopen`, errno and typed errors,
 * struct codecs (`sockaddr_*`, `epoll_event`, `msghdr`/`cmsghdr`), raw
 * syscalls (the kernel's convention: `>= 0` or `-errno`, exported as `sys`),
 * the typed `Socket`, and process, fd and syslog calls.
 *
 * **Raw access can corrupt memory.** This entry point is for code that needs
 * the system calls themselves; most programs want the reactor instead.
 *
 * - `libc` (and `symbols`) are the bare `Deno.dlopen` symbols: nothing is
 *   checked, and a wrong length, pointer or out-array overwrites the heap.
 *   Use them only when no wrapper fits, and check every length yourself.
 * - `sys.*` checks every length, offset and count against the view it is
 *   given and throws a `RangeError` naming the call before the system call.
 *   Sizes and buffers are read through the engine's own `TypedArray` and
 *   `DataView` getters, so a subclass or getter that lies about its size
 *   is not believed, and no caller code runs between a check and its call;
 *   anything that is not a real view is a `TypeError`. Length cells the
 *   kernel reads back (`addrLen`, `valueLen`) are copied first, so another
 *   thread editing shared memory cannot widen them.
 *   The calls that take structs of raw addresses (`readv`, `writev`,
 *   `recvmsg`, `sendmsg`) accept only the `IovecArray` / `Msghdr` codecs,
 *   which encode the addresses from their views at each call and hand out
 *   copies of the encoded bytes.
 * - `epollWaitAsync` has a pool thread wait into a private buffer; the
 *   events are copied into `events` when the promise settles, so detaching
 *   or shrinking it meanwhile loses events, never corrupts memory.
 *
 * @example Raw reads: -errno, and a RangeError for a length over the buffer
 * ```ts
 * import { EAGAIN, Socket, sys } from "@ffinet/ffinet/ffi";
 * const [a, b] = Socket.pair();
 * const buf = new Uint8Array(4);
 * console.log(sys.read(a.fd, buf) === -EAGAIN); // true: nothing to read yet
 * try {
 *   sys.read(a.fd, buf, 16);
 * } catch (e) {
 *   console.log((e as RangeError).message); // Cannot read: length 16 exceeds the buffer's 4 bytes
 * }
 * a.close();
 * b.close();
 * ```
 *
 * @module
 */
export {
  check,
  denoErrorClass,
  EADDRINUSE,
  EAGAIN,
  EBADF,
  ECONNABORTED,
  ECONNREFUSED,
  ECONNRESET,
  EEXIST,
  EINPROGRESS,
  EINTR,
  EINVAL,
  EMFILE,
  ENFILE,
  ENOENT,
  EPIPE,
  Errno,
  errnoCell,
  ErrnoError,
  type ErrnoErrorOptions,
  errnoName,
  ETIMEDOUT,
  strerror,
} from "./errno.ts";
export { AddressLookupError, resolveHost, type ResolveOptions } from "./dns.ts";
export {
  AF,
  EFD,
  EPOLL,
  F,
  IOCTL,
  IPV6,
  LOCK,
  MSG,
  O,
  RLIMIT,
  SCM,
  SHUT,
  SIG,
  SO,
  SOCK,
  SOL,
  TCP,
  TFD,
} from "./constants.ts";
export {
  formatIPv4,
  formatIPv6,
  htonl,
  htons,
  ntohl,
  ntohs,
  parseIPv4,
  parseIPv6,
} from "./inet.ts";
export {
  decodeSockaddr,
  encodeSockaddr,
  formatAddress,
  type Inet6Address,
  type InetAddress,
  ipAddress,
  SOCKADDR_IN6_SIZE,
  SOCKADDR_IN_SIZE,
  SOCKADDR_STORAGE_SIZE,
  SOCKADDR_UN_SIZE,
  type SocketAddress,
  UNIX_PATH_MAX,
  type UnixAddress,
} from "./sockaddr.ts";
export {
  EPOLL_EVENT,
  type EpollEvent,
  type EpollEventLayout,
  epollEventLayout,
  readEpollEvent,
  writeEpollEvent,
} from "./epoll_event.ts";
export {
  getSocketOption,
  type Linger,
  LINGER_MAX_SECONDS,
  setSocketOption,
  SOCKET_OPTIONS,
  type SocketOptionKinds,
  type SocketOptionName,
  type SocketOptionValue,
  TIMEOUT_MAX_MS,
  type WritableSocketOptionName,
} from "./sockopt.ts";
export {
  availableTcpUlps,
  getTcpUlp,
  type KernelTlsSupport,
  kernelTlsSupport,
  readTcpUlp,
  setTcpUlp,
  TCP_ULP,
  TCP_ULP_NAME_MAX,
} from "./ktls.ts";
export {
  type ConnectState,
  DEFAULT_BACKLOG,
  Socket,
  type SocketCreateOptions,
  type SocketFamily,
  type SocketType,
} from "./socket.ts";
export {
  CMSG_ALIGN,
  CMSG_LEN,
  CMSG_SPACE,
  CMSGHDR_SIZE,
  type ControlMessage,
  IOV_MAX,
  IOVEC_SIZE,
  IovecArray,
  type IovecChunk,
  Msghdr,
  MSGHDR_SIZE,
  type MsghdrOptions,
  readControlMessages,
  writeControlMessage,
} from "./msghdr.ts";
export {
  MIN_CONTROL_SIZE,
  recvFds,
  recvFdsOrThrow,
  type RecvFdsResult,
  SCM_MAX_FD,
  sendFds,
  sendFdsOrThrow,
} from "./fd_passing.ts";
export {
  IFF,
  type InterfaceAddress,
  type NetworkInterface,
  networkInterfaces,
} from "./interfaces.ts";
export {
  closeFd,
  eventfd,
  type EventfdOptions,
  eventfdRead,
  eventfdWrite,
  isCloexec,
  isNonBlocking,
  isOpen,
  listOpenFds,
  pipe,
  type PipeOptions,
  setCloexec,
  setNonBlocking,
} from "./fd.ts";
export {
  chdir,
  chmodSocketFile,
  dup2,
  fchmod,
  flock,
  ftruncate,
  getpid,
  getppid,
  getrlimit,
  getsid,
  getuid,
  kill,
  openFile,
  pidfdOpen,
  readProcFile,
  type ResourceLimit,
  setgid,
  setgroups,
  setrlimit,
  setsid,
  setuid,
  umask,
  unlink,
} from "./process.ts";
export {
  closelog,
  currentIdent,
  escapeSyslogControls,
  facilityByName,
  LOG_ALERT,
  LOG_AUTH,
  LOG_AUTHPRIV,
  LOG_CONS,
  LOG_CRIT,
  LOG_CRON,
  LOG_DAEMON,
  LOG_DEBUG,
  LOG_EMERG,
  LOG_ERR,
  LOG_FACMASK,
  LOG_FTP,
  LOG_INFO,
  LOG_KERN,
  LOG_LOCAL0,
  LOG_LOCAL1,
  LOG_LOCAL2,
  LOG_LOCAL3,
  LOG_LOCAL4,
  LOG_LOCAL5,
  LOG_LOCAL6,
  LOG_LOCAL7,
  LOG_LPR,
  LOG_MAIL,
  LOG_MASK,
  LOG_NDELAY,
  LOG_NEWS,
  LOG_NOTICE,
  LOG_NOWAIT,
  LOG_ODELAY,
  LOG_PERROR,
  LOG_PID,
  LOG_PRIMASK,
  LOG_SYSLOG,
  LOG_UPTO,
  LOG_USER,
  LOG_UUCP,
  LOG_WARNING,
  openlog,
  priorityByName,
  resolveFacility,
  resolvePriority,
  setlogmask,
  syslog,
} from "./syslog.ts";
export { WRITEV_MAX_CHUNKS, writevChunks } from "./writev.ts";
import * as sys from "./syscalls.ts";
/** The raw system calls (`>= 0` or `-errno`), every length checked: see `syscalls.ts`. */
export { sys };
export { type Libc, libc, symbols } from "./libc.ts";
export {
  RawDeflate,
  type RawDeflateOptions,
  RawInflate,
  type RawInflateOptions,
  ZlibError,
  zlibGuardsIntact,
  zlibSymbols,
} from "./zlib.ts";
