/**
 * The libc symbol table and the one `Deno.dlopen` of glibc's `libc.so.6`.
 *
 * Every entry carries its C prototype beside it. `ssize_t` results of the hot
 * I/O calls are declared `i32` so that a call never allocates a BigInt; the
 * kernel never returns more than 2 GiB from one call on a socket.
 *
 * Nothing outside `ffi/` imports this file's pointer-typed symbols directly:
 * the typed wrappers in `syscalls.ts` and `socket.ts` are the public surface.
 * These symbols check nothing: a length over a buffer, a wrong pointer or a
 * too-small out-array makes libc write past the memory it was given. Use
 * the wrappers, which check every length against its view first.
 *
 * @module
 */

/** The symbols ffinet binds from libc, with their C prototypes. */
export const symbols = {
  // int socket(int domain, int type, int protocol);
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  // int socketpair(int domain, int type, int protocol, int sv[2]);
  socketpair: { parameters: ["i32", "i32", "i32", "buffer"], result: "i32" },
  // int bind(int sockfd, const struct sockaddr *addr, socklen_t addrlen);
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  // int listen(int sockfd, int backlog);
  listen: { parameters: ["i32", "i32"], result: "i32" },
  // int accept4(int sockfd, struct sockaddr *addr, socklen_t *addrlen, int flags);
  accept4: { parameters: ["i32", "buffer", "buffer", "i32"], result: "i32" },
  // int connect(int sockfd, const struct sockaddr *addr, socklen_t addrlen);
  connect: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  // int shutdown(int sockfd, int how);
  shutdown: { parameters: ["i32", "i32"], result: "i32" },
  // int close(int fd);
  close: { parameters: ["i32"], result: "i32" },
  // ssize_t read(int fd, void *buf, size_t count);
  read: { parameters: ["i32", "buffer", "usize"], result: "i32" },
  // ssize_t write(int fd, const void *buf, size_t count);
  write: { parameters: ["i32", "buffer", "usize"], result: "i32" },
  // ssize_t readv(int fd, const struct iovec *iov, int iovcnt);
  readv: { parameters: ["i32", "buffer", "i32"], result: "i32" },
  // ssize_t writev(int fd, const struct iovec *iov, int iovcnt);
  writev: { parameters: ["i32", "buffer", "i32"], result: "i32" },
  // ssize_t recv(int sockfd, void *buf, size_t len, int flags);
  recv: { parameters: ["i32", "buffer", "usize", "i32"], result: "i32" },
  // ssize_t send(int sockfd, const void *buf, size_t len, int flags);
  send: { parameters: ["i32", "buffer", "usize", "i32"], result: "i32" },
  // ssize_t recvfrom(int sockfd, void *buf, size_t len, int flags,
  //                  struct sockaddr *src_addr, socklen_t *addrlen);
  recvfrom: {
    parameters: ["i32", "buffer", "usize", "i32", "buffer", "buffer"],
    result: "i32",
  },
  // ssize_t sendto(int sockfd, const void *buf, size_t len, int flags,
  //                const struct sockaddr *dest_addr, socklen_t addrlen);
  sendto: {
    parameters: ["i32", "buffer", "usize", "i32", "buffer", "u32"],
    result: "i32",
  },
  // ssize_t recvmsg(int sockfd, struct msghdr *msg, int flags);
  recvmsg: { parameters: ["i32", "buffer", "i32"], result: "i32" },
  // ssize_t sendmsg(int sockfd, const struct msghdr *msg, int flags);
  sendmsg: { parameters: ["i32", "buffer", "i32"], result: "i32" },
  // int setsockopt(int sockfd, int level, int optname, const void *optval, socklen_t optlen);
  setsockopt: {
    parameters: ["i32", "i32", "i32", "buffer", "u32"],
    result: "i32",
  },
  // int getsockopt(int sockfd, int level, int optname, void *optval, socklen_t *optlen);
  getsockopt: {
    parameters: ["i32", "i32", "i32", "buffer", "buffer"],
    result: "i32",
  },
  // int getsockname(int sockfd, struct sockaddr *addr, socklen_t *addrlen);
  getsockname: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  // int getpeername(int sockfd, struct sockaddr *addr, socklen_t *addrlen);
  getpeername: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  // int fcntl(int fd, int cmd, int arg);   (the fixed-argument form)
  fcntl: { parameters: ["i32", "i32", "i32"], result: "i32" },
  // int ioctl(int fd, unsigned long request, int *argp);   (FIONREAD form)
  ioctl: { parameters: ["i32", "usize", "buffer"], result: "i32" },
  // int pipe2(int pipefd[2], int flags);
  pipe2: { parameters: ["buffer", "i32"], result: "i32" },
  // int eventfd(unsigned int initval, int flags);
  eventfd: { parameters: ["u32", "i32"], result: "i32" },
  // int timerfd_create(int clockid, int flags);
  timerfd_create: { parameters: ["i32", "i32"], result: "i32" },
  // int timerfd_settime(int fd, int flags, const struct itimerspec *new_value,
  //                     struct itimerspec *old_value);
  timerfd_settime: {
    parameters: ["i32", "i32", "buffer", "buffer"],
    result: "i32",
  },
  // int epoll_create1(int flags);
  epoll_create1: { parameters: ["i32"], result: "i32" },
  // int epoll_ctl(int epfd, int op, int fd, struct epoll_event *event);
  epoll_ctl: { parameters: ["i32", "i32", "i32", "buffer"], result: "i32" },
  // int epoll_wait(int epfd, struct epoll_event *events, int maxevents, int timeout);
  epoll_wait: { parameters: ["i32", "buffer", "i32", "i32"], result: "i32" },
  // The same call on a pool thread: its errno cannot be read, only its result.
  epoll_wait_nonblocking: {
    name: "epoll_wait",
    parameters: ["i32", "buffer", "i32", "i32"],
    result: "i32",
    nonblocking: true,
  },
  // --- name resolution (ffi/dns.ts); on a pool thread: it may block on DNS ---
  // int getaddrinfo(const char *node, const char *service,
  //                 const struct addrinfo *hints, struct addrinfo **res);
  getaddrinfo: {
    parameters: ["buffer", "pointer", "buffer", "buffer"],
    result: "i32",
    nonblocking: true,
  },
  // void freeaddrinfo(struct addrinfo *res);
  freeaddrinfo: { parameters: ["pointer"], result: "void" },
  // const char *gai_strerror(int errcode);
  gai_strerror: { parameters: ["i32"], result: "pointer" },
  // int getifaddrs(struct ifaddrs **ifap);
  getifaddrs: { parameters: ["buffer"], result: "i32" },
  // void freeifaddrs(struct ifaddrs *ifa);
  freeifaddrs: { parameters: ["pointer"], result: "void" },
  // int inet_pton(int af, const char *src, void *dst);
  inet_pton: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  // const char *inet_ntop(int af, const void *src, char *dst, socklen_t size);
  inet_ntop: {
    parameters: ["i32", "buffer", "buffer", "u32"],
    result: "pointer",
  },
  // pid_t getpid(void);
  getpid: { parameters: [], result: "i32" },
  // pid_t getppid(void);
  getppid: { parameters: [], result: "i32" },
  // pid_t setsid(void);
  setsid: { parameters: [], result: "i32" },
  // pid_t getsid(pid_t pid);
  getsid: { parameters: ["i32"], result: "i32" },
  // mode_t umask(mode_t mask);
  umask: { parameters: ["u32"], result: "u32" },
  // int fchmod(int fd, mode_t mode);   (on a socket before bind: the mode its file gets)
  fchmod: { parameters: ["i32", "u32"], result: "i32" },
  // int chmod(const char *path, mode_t mode);   (through /proc/self/fd/N: one inode)
  chmod: { parameters: ["buffer", "u32"], result: "i32" },
  // int statx(int dirfd, const char *path, int flags, unsigned int mask, struct statx *buf);
  statx: { parameters: ["i32", "buffer", "i32", "u32", "buffer"], result: "i32" },
  // int chdir(const char *path);
  chdir: { parameters: ["buffer"], result: "i32" },
  // int dup2(int oldfd, int newfd);
  dup2: { parameters: ["i32", "i32"], result: "i32" },
  // int kill(pid_t pid, int sig);
  kill: { parameters: ["i32", "i32"], result: "i32" },
  // int pidfd_open(pid_t pid, unsigned int flags);   (glibc >= 2.36)
  pidfd_open: { parameters: ["i32", "u32"], result: "i32", optional: true },
  // int getrlimit(int resource, struct rlimit *rlim);
  getrlimit: { parameters: ["i32", "buffer"], result: "i32" },
  // int setrlimit(int resource, const struct rlimit *rlim);
  setrlimit: { parameters: ["i32", "buffer"], result: "i32" },
  // int open(const char *pathname, int flags, mode_t mode);
  open: { parameters: ["buffer", "i32", "u32"], result: "i32" },
  // int flock(int fd, int operation);
  flock: { parameters: ["i32", "i32"], result: "i32" },
  // int ftruncate(int fd, off_t length);
  ftruncate: { parameters: ["i32", "i64"], result: "i32" },
  // int unlink(const char *pathname);
  unlink: { parameters: ["buffer"], result: "i32" },
  // uid_t getuid(void);
  getuid: { parameters: [], result: "u32" },
  // int setuid(uid_t uid);
  setuid: { parameters: ["u32"], result: "i32" },
  // int setgid(gid_t gid);
  setgid: { parameters: ["u32"], result: "i32" },
  // int setgroups(size_t size, const gid_t *list);
  setgroups: { parameters: ["usize", "buffer"], result: "i32" },
  // void openlog(const char *ident, int option, int facility);   (ident must outlive it)
  openlog: { parameters: ["buffer", "i32", "i32"], result: "void" },
  // void syslog(int priority, const char *format, ...);   (always called with "%s")
  syslog: { parameters: ["i32", "buffer", "buffer"], result: "void" },
  // void closelog(void);
  closelog: { parameters: [], result: "void" },
  // int setlogmask(int mask);
  setlogmask: { parameters: ["i32"], result: "i32" },
  // char *strerror(int errnum);
  strerror: { parameters: ["i32"], result: "pointer" },
  // int *__errno_location(void);
  __errno_location: { parameters: [], result: "pointer" },
  // DIR *opendir(const char *name);
  opendir: { parameters: ["buffer"], result: "pointer" },
  // struct dirent *readdir(DIR *dirp);
  readdir: { parameters: ["pointer"], result: "pointer" },
  // int closedir(DIR *dirp);
  closedir: { parameters: ["pointer"], result: "i32" },
  // int dirfd(DIR *dirp);
  dirfd: { parameters: ["pointer"], result: "i32" },
  // ssize_t readlink(const char *pathname, char *buf, size_t bufsiz);   (never > PATH_MAX)
  readlink: { parameters: ["buffer", "buffer", "usize"], result: "i32" },
  // --- process spawning (ffi/spawn.ts) ---
  // int posix_spawn(pid_t *pid, const char *path,
  //                 const posix_spawn_file_actions_t *file_actions,
  //                 const posix_spawnattr_t *attrp, char *const argv[], char *const envp[]);
  posix_spawn: {
    parameters: ["buffer", "buffer", "buffer", "buffer", "buffer", "buffer"],
    result: "i32",
  },
  // int posix_spawnattr_init(posix_spawnattr_t *attr);
  posix_spawnattr_init: { parameters: ["buffer"], result: "i32" },
  // int posix_spawnattr_destroy(posix_spawnattr_t *attr);
  posix_spawnattr_destroy: { parameters: ["buffer"], result: "i32" },
  // int posix_spawnattr_setflags(posix_spawnattr_t *attr, short flags);
  posix_spawnattr_setflags: { parameters: ["buffer", "i16"], result: "i32" },
  // int posix_spawnattr_setsigmask(posix_spawnattr_t *attr, const sigset_t *sigmask);
  posix_spawnattr_setsigmask: { parameters: ["buffer", "buffer"], result: "i32" },
  // int posix_spawnattr_setsigdefault(posix_spawnattr_t *attr, const sigset_t *sigdefault);
  posix_spawnattr_setsigdefault: { parameters: ["buffer", "buffer"], result: "i32" },
  // int posix_spawn_file_actions_init(posix_spawn_file_actions_t *file_actions);
  posix_spawn_file_actions_init: { parameters: ["buffer"], result: "i32" },
  // int posix_spawn_file_actions_destroy(posix_spawn_file_actions_t *file_actions);
  posix_spawn_file_actions_destroy: { parameters: ["buffer"], result: "i32" },
  // int posix_spawn_file_actions_adddup2(posix_spawn_file_actions_t *fa, int fildes, int newfildes);
  posix_spawn_file_actions_adddup2: { parameters: ["buffer", "i32", "i32"], result: "i32" },
  // int posix_spawn_file_actions_addopen(posix_spawn_file_actions_t *fa, int fildes,
  //                                      const char *path, int oflag, mode_t mode);
  posix_spawn_file_actions_addopen: {
    parameters: ["buffer", "i32", "buffer", "i32", "u32"],
    result: "i32",
  },
  // int posix_spawn_file_actions_addclosefrom_np(posix_spawn_file_actions_t *fa, int from);
  //   (glibc >= 2.34)
  posix_spawn_file_actions_addclosefrom_np: {
    parameters: ["buffer", "i32"],
    result: "i32",
    optional: true,
  },
  // int posix_spawn_file_actions_addchdir_np(posix_spawn_file_actions_t *fa, const char *path);
  //   (glibc >= 2.29)
  posix_spawn_file_actions_addchdir_np: {
    parameters: ["buffer", "buffer"],
    result: "i32",
    optional: true,
  },
  // int waitid(idtype_t idtype, id_t id, siginfo_t *infop, int options);   (siginfo_t: 128 bytes)
  waitid: { parameters: ["i32", "u32", "buffer", "i32"], result: "i32" },
  // int pidfd_send_signal(int pidfd, int sig, siginfo_t *info, unsigned int flags);  (glibc >= 2.36)
  pidfd_send_signal: {
    parameters: ["i32", "i32", "pointer", "u32"],
    result: "i32",
    optional: true,
  },
  // long syscall(long number, long a1, long a2, long a3, long a4);   (variadic; integer args only)
  syscall: { parameters: ["i64", "i64", "i64", "i64", "i64"], result: "i64" },
  // int pthread_sigmask(int how, const sigset_t *set, sigset_t *oldset);   (sigset_t: 128 bytes)
  pthread_sigmask: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  // int poll(struct pollfd *fds, nfds_t nfds, int timeout);   (struct pollfd: 8 bytes each)
  poll: { parameters: ["buffer", "u64", "i32"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

/** The loaded library type. */
export type Libc = Deno.DynamicLibrary<typeof symbols>["symbols"];

function load(): Deno.DynamicLibrary<typeof symbols> {
  if (Deno.build.os !== "linux") {
    throw new Error(
      `Cannot load libc: ffinet runs on Linux only (this is ${Deno.build.os})`,
    );
  }
  try {
    return Deno.dlopen("libc.so.6", symbols);
  } catch (e) {
    if (e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied) {
      throw new Error(
        "Cannot load libc: ffinet needs --allow-ffi (run with `deno run --allow-ffi`)",
        { cause: e },
      );
    }
    throw new Error(`Cannot load libc: ${(e as Error).message}`, { cause: e });
  }
}

/**
 * The libc symbols, loaded once per isolate (each Worker loads its own).
 *
 * @example Call a raw symbol
 * ```ts
 * import { libc } from "@ffinet/ffinet/ffi";
 * console.log(libc.getpid());
 * ```
 */
export const libc: Libc = load().symbols;
