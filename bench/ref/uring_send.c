// What a broadcast costs the sender per delivered frame: N loopback TCP connections,
// each round one 66-byte WebSocket frame to each, sent either by one send() per socket
// (mode 0, what ffinet's publish does today) or as N SQEs of one io_uring_enter (mode 1).
// A forked child drains every connection. Prints the sender's CPU (user + system) per send.
//
//     apt-get install -y liburing-dev
//     gcc -O2 -o /tmp/uring_send bench/ref/uring_send.c -luring
//     for m in 0 1 0 1; do /tmp/uring_send 64 20000 $m; done   # N ROUNDS MODE
#include <liburing.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <fcntl.h>
int main(int argc, char **argv) {
  int n = atoi(argv[1]), rounds = atoi(argv[2]), mode = atoi(argv[3]);
  int ls = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)};
  bind(ls, (void *)&a, sizeof a); listen(ls, 1024);
  socklen_t al = sizeof a; getsockname(ls, (void *)&a, &al);
  int cl[4096], sv[4096];
  for (int i = 0; i < n; i++) {
    cl[i] = socket(AF_INET, SOCK_STREAM, 0);
    connect(cl[i], (void *)&a, sizeof a);
    sv[i] = accept(ls, 0, 0);
    int one = 1; setsockopt(sv[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(sv[i], F_SETFL, O_NONBLOCK);
  }
  pid_t p = fork();
  if (p == 0) {  // drain
    int ep = epoll_create1(0);
    for (int i = 0; i < n; i++) { struct epoll_event e = {.events = EPOLLIN, .data.fd = cl[i]}; epoll_ctl(ep, EPOLL_CTL_ADD, cl[i], &e); }
    char buf[65536]; struct epoll_event ev[256]; long total = 0, want = (long)n * rounds * 66;
    while (total < want) { int k = epoll_wait(ep, ev, 256, 5000); if (k <= 0) break; for (int j = 0; j < k; j++) { ssize_t r = read(ev[j].data.fd, buf, sizeof buf); if (r > 0) total += r; } }
    _exit(0);
  }
  char frame[66]; memset(frame, 'x', 66); frame[0] = 0x81; frame[1] = 64;
  struct io_uring ring; io_uring_queue_init(4096, &ring, 0);
  struct rusage r0, r1; getrusage(RUSAGE_SELF, &r0);
  long sent = 0;
  for (int r = 0; r < rounds; r++) {
    if (mode == 0) {
      for (int i = 0; i < n; i++) if (send(sv[i], frame, 66, MSG_NOSIGNAL) == 66) sent++;
    } else {
      for (int i = 0; i < n; i++) { struct io_uring_sqe *s = io_uring_get_sqe(&ring); io_uring_prep_send(s, sv[i], frame, 66, MSG_NOSIGNAL); }
      io_uring_submit_and_wait(&ring, n);
      struct io_uring_cqe *c; unsigned head, cnt = 0;
      io_uring_for_each_cqe(&ring, head, c) { if (c->res == 66) sent++; cnt++; }
      io_uring_cq_advance(&ring, cnt);
    }
    if ((r & 63) == 63) usleep(200);  // let the drain keep up
  }
  getrusage(RUSAGE_SELF, &r1);
  double us = (r1.ru_utime.tv_sec - r0.ru_utime.tv_sec) * 1e6 + (r1.ru_utime.tv_usec - r0.ru_utime.tv_usec) +
              (r1.ru_stime.tv_sec - r0.ru_stime.tv_sec) * 1e6 + (r1.ru_stime.tv_usec - r0.ru_stime.tv_usec);
  printf("%s n=%d sent=%ld cpu/send=%.3f us\n", mode ? "uring" : "send ", n, sent, us / sent);
  waitpid(p, 0, 0);
  return 0;
}
