"""What the local test servers share: a quiet keep-alive handler, a threaded server that tolerates
clients hanging up, and the foreground loop of their command lines."""

from __future__ import annotations

import socket
import struct
import sys
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class QuietHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive (as real clients expect), no access log, and a connection can be reset."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass  # tests and benchmarks read the servers' counters, not an access log

    def finish(self) -> None:
        # a reset or abandoned (timed-out) connection is already gone: nothing to flush
        try:
            super().finish()
        except OSError:
            pass

    def reset_connection(self) -> None:
        """Close the socket with RST (SO_LINGER 0): the client sees a reset, not a clean EOF."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True


class TolerantServer(ThreadingHTTPServer):
    """One thread per connection; clients that give up (timeouts, killed runs) are not errors."""

    daemon_threads = True  # held requests must not keep the process alive
    block_on_close = False
    request_queue_size = 256  # many concurrent connections arrive at once

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def serve_in_foreground(server: ThreadingHTTPServer, banner: str, on_exit: Callable[[], None] | None = None) -> None:
    """Print ``banner`` (benchmarks read the URL from it) and serve until Ctrl-C or termination."""
    print(banner, flush=True)
    try:
        server.serve_forever(poll_interval=0.05)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        if on_exit is not None:
            on_exit()
