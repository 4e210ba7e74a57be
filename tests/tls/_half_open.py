"""Half-open TLS handshakes, for tests/tls/flood_test.ts.

usage: _half_open.py PORT COUNT DEADLINE_S

Opens COUNT TCP connections to 127.0.0.1:PORT. Even ones send nothing;
odd ones send the first 1 to 43 bytes of a ClientHello (a record header, a
handshake header, the version and part of the random) and stop there. Prints
"open N CLOSED" once all are connected and their bytes sent (CLOSED: how
many the server has closed by then), then watches them and
prints "reaped N SECONDS" when the server has closed every one (EOF or
reset), or at DEADLINE_S after "open" with the number closed so far; then
exits.
"""
import os
import resource
import selectors
import socket
import sys
import time

port, count, deadline_s = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
if hard != resource.RLIM_INFINITY and hard < count + 64:
    print(f"error the fd hard limit {hard} is below {count + 64}", flush=True)
    sys.exit(2)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

hello = bytes([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xFC, 0x03, 0x03]) + os.urandom(32)
sel = selectors.DefaultSelector()
pending = {}
socks = []
for i in range(count):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setblocking(False)
    s.connect_ex(("127.0.0.1", port))
    socks.append(s)
    pending[s.fileno()] = (s, b"" if i % 2 == 0 else hello[: 1 + (i // 2) % len(hello)])
    sel.register(s, selectors.EVENT_WRITE)
    # Let the server accept as we go: at most 256 connections in flight.
    while len(pending) > 256 or (i == count - 1 and pending):
        for key, _ in sel.select(timeout=5):
            s, data = pending.pop(key.fd)
            sel.unregister(s)
            err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err != 0:
                print(f"error connect: errno {err}", flush=True)
                sys.exit(1)
            if data:
                s.send(data)
opened = time.monotonic()
for s in socks:
    sel.register(s, selectors.EVENT_READ)
# How many the server had closed already (a handshake timeout shorter than the opening).
closed = sum(1 for key, _ in sel.select(timeout=0))
print(f"open {count} {closed}", flush=True)
open_socks = len(socks)
while open_socks > 0 and time.monotonic() - opened < deadline_s:
    for key, _ in sel.select(timeout=0.5):
        s = key.fileobj
        try:
            data = s.recv(4096)
        except OSError:
            data = b""
        if data:
            continue  # an alert before the close
        sel.unregister(s)
        s.close()
        open_socks -= 1
print(f"reaped {count - open_socks} {time.monotonic() - opened:.1f}", flush=True)
