// An io_uring echo server in C, the same job as ../shared/bench/c_echo.c (epoll):
// one thread, one recv in flight per connection, its echo sent as a linked SQE,
// every SQE of a loop turn submitted with one io_uring_enter (which also waits).
// It answers whether an io_uring reactor would beat epoll on small messages.
//
//     apt-get install -y liburing-dev
//     gcc -O2 -o /tmp/uring_echo bench/ref/uring_echo.c -luring
//     ../shared/bench/compare.sh echo -r 3 -- /tmp/uring_echo {port}
#define _GNU_SOURCE
#include <liburing.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum { ACCEPT = 1, RECV = 2, SEND = 3 };
#define TAG(kind, fd) (((unsigned long long)(kind) << 32) | (unsigned)(fd))
#define BUFSZ 65536

static struct io_uring ring;
static char *bufs[1 << 16];

static struct io_uring_sqe *sqe(void) {
  struct io_uring_sqe *s = io_uring_get_sqe(&ring);
  if (!s) { io_uring_submit(&ring); s = io_uring_get_sqe(&ring); }
  return s;
}
static void arm_recv(int fd) {
  struct io_uring_sqe *s = sqe();
  io_uring_prep_recv(s, fd, bufs[fd], BUFSZ, 0);
  io_uring_sqe_set_data64(s, TAG(RECV, fd));
}

int main(int argc, char **argv) {
  int port = argc > 1 ? atoi(argv[1]) : 9100;
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, 4);
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET; a.sin_port = htons(port); a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(lfd, (void *)&a, sizeof a) || listen(lfd, 4096)) { perror("bind/listen"); return 1; }
  if (io_uring_queue_init(4096, &ring, 0)) { perror("io_uring"); return 1; }
  struct io_uring_sqe *s = sqe();
  io_uring_prep_multishot_accept(s, lfd, 0, 0, 0);
  io_uring_sqe_set_data64(s, TAG(ACCEPT, lfd));
  printf("listening %d\n", port); fflush(stdout);
  for (;;) {
    io_uring_submit_and_wait(&ring, 1);
    struct io_uring_cqe *c; unsigned head, seen = 0;
    io_uring_for_each_cqe(&ring, head, c) {
      seen++;
      unsigned long long d = io_uring_cqe_get_data64(c);
      int kind = d >> 32, fd = (int)(d & 0xffffffff), res = c->res;
      if (kind == ACCEPT) {
        if (res >= 0) { if (!bufs[res]) bufs[res] = malloc(BUFSZ); arm_recv(res); }
        if (!(c->flags & IORING_CQE_F_MORE)) {
          s = sqe(); io_uring_prep_multishot_accept(s, lfd, 0, 0, 0); io_uring_sqe_set_data64(s, TAG(ACCEPT, lfd));
        }
      } else if (kind == RECV) {
        if (res <= 0) { close(fd); continue; }
        // The echo, then the next recv once it is sent (a short send on a blocking-mode
        // socket under io_uring completes whole, so the buffer is free again after it).
        s = sqe(); io_uring_prep_send(s, fd, bufs[fd], res, MSG_NOSIGNAL); io_uring_sqe_set_data64(s, TAG(SEND, fd));
        s->flags |= IOSQE_IO_LINK;
        arm_recv(fd);
      }  // a SEND completion needs nothing: the recv linked behind it is already queued
    }
    io_uring_cq_advance(&ring, seen);
  }
}
