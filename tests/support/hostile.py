"""Clients that misbehave on purpose, for tests/e2e/hostile_test.py and bench/soak.py: a TLS
client whose every byte on the wire is ours to choose (Python's SSLObject over memory BIOs on a
plain socket, so raw bytes can be sent before, inside or after the TLS session), and helpers to
read whatever the server answers until it closes.
"""
import select
import socket
import ssl
import time


class RawTls:
    """One TCP connection to 127.0.0.1:`port` speaking TLS through memory BIOs: `send` writes
    through the session, `send_raw` writes bytes on the socket itself, and `client_hello` gives
    the first flight without completing the handshake."""

    def __init__(self, port, ca_file, timeout=20.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.timeout = timeout
        context = ssl.create_default_context(cafile=ca_file)
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = context.wrap_bio(self.incoming, self.outgoing, server_hostname="127.0.0.1")
        self.closed = False  # the server ended the session or the connection
        self.received = b""  # plaintext not yet returned by receive()

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.close()

    def _flush(self):
        data = self.outgoing.read()
        if data:
            self.sock.sendall(data)

    def _fill(self, timeout):
        """One read from the socket into the TLS object; False once the server closed."""
        self.sock.settimeout(max(timeout, 0.01))
        try:
            data = self.sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            data = b""
        if not data:
            self.closed = True
            self.incoming.write_eof()
            return False
        self.incoming.write(data)
        return True

    def client_hello(self):
        """The ClientHello this client would send, without sending it."""
        try:
            self.tls.do_handshake()
        except ssl.SSLWantReadError:
            pass
        return self.outgoing.read()

    def handshake(self):
        deadline = time.time() + self.timeout
        while True:
            try:
                self.tls.do_handshake()
                self._flush()
                return
            except ssl.SSLWantReadError:
                self._flush()
                if time.time() > deadline or not self._fill(deadline - time.time()):
                    raise ConnectionError("the server closed the connection during the handshake")

    def seal(self, data):
        """The TLS records that carry `data`, not sent."""
        self.tls.write(data)
        return self.outgoing.read()

    def _decrypt(self):
        """Moves what the TLS object can decrypt into `self.received`; False once the session
        or the connection is closed."""
        while True:
            try:
                data = self.tls.read(65536)
            except ssl.SSLWantReadError:
                return True
            except ssl.SSLError:  # an alert, a truncated or broken stream
                self.closed = True
                return False
            if not data:  # the server's close_notify
                self.closed = True
                return False
            self.received += data

    def server_has_spoken(self):
        """True once the server sent data (not just session tickets) or closed."""
        while not self.closed and select.select([self.sock], [], [], 0)[0]:
            if not self._fill(1) or not self._decrypt():
                break
        return bool(self.received) or self.closed

    def send(self, data, chunk=16384, pace=0.0):
        """Writes `data` through the session in chunks, stopping early once the server has
        answered or closed. With `pace`, waits up to that long after each chunk for the server
        to answer, so that it has read every chunk but the last before deciding: a server that
        closes with unread bytes makes the kernel reset the connection, which can drop its
        answer (see send_in_one_write for that case). Returns the number of bytes written."""
        sent = 0
        for i in range(0, len(data), chunk):
            if pace:
                select.select([self.sock], [], [], pace)
            if self.server_has_spoken():
                break
            try:
                self.sock.sendall(self.seal(data[i:i + chunk]))
            except OSError:
                break
            sent += len(data[i:i + chunk])
        return sent

    def send_raw(self, data):
        """Bytes on the socket itself, outside the TLS session. False if the server had closed."""
        try:
            self.sock.sendall(data)
            return True
        except OSError:
            return False

    def close_notify(self):
        """Ends the TLS session from our side (the TCP connection stays open)."""
        try:
            self.tls.unwrap()
        except ssl.SSLError:
            pass
        self._flush()

    def raw_rest(self, timeout=10.0):
        """Raw bytes the server sends on the socket until it closes or `timeout` passes, for
        after the session ended. Returns (bytes, closed)."""
        deadline = time.time() + timeout
        out = b""
        while time.time() < deadline:
            self.sock.settimeout(max(deadline - time.time(), 0.01))
            try:
                data = self.sock.recv(65536)
            except (ConnectionResetError, BrokenPipeError):
                return out, True
            except (TimeoutError, socket.timeout):
                break
            if not data:
                return out, True
            out += data
        return out, False

    def receive(self, timeout=20.0):
        """Plaintext the server sends until it closes the session or the connection, or until
        `timeout`; what was already received counts too. `self.closed` says whether it closed."""
        deadline = time.time() + timeout
        while self._decrypt():
            remaining = deadline - time.time()
            if remaining <= 0:
                break
            try:
                self._fill(remaining)
            except (TimeoutError, socket.timeout):
                break
        out, self.received = self.received, b""
        return out


def raw_exchange(port, data, timeout=20.0, shut_write=False):
    """Sends `data` on a plain TCP connection (no TLS) and reads until the server closes or
    `timeout` passes. Returns (bytes received, closed, seconds taken)."""
    started = time.time()
    out, closed = b"", False
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(data)
            if shut_write:
                s.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        deadline = started + timeout
        while True:
            remaining = deadline - time.time()
            if remaining <= 0:
                break
            s.settimeout(remaining)
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, BrokenPipeError):
                closed = True
                break
            except (TimeoutError, socket.timeout):
                break
            if not chunk:
                closed = True
                break
            out += chunk
    return out, closed, time.time() - started


def tls_exchange(port, ca_file, data, timeout=20.0, chunk=16384, pace=0.0):
    """Handshakes, writes `data` through TLS (stopping early if the server answers first, see
    RawTls.send) and reads until the server closes. Returns (plaintext received, closed)."""
    with RawTls(port, ca_file, timeout=timeout) as conn:
        conn.handshake()
        conn.send(data, chunk=chunk, pace=pace)
        answer = conn.receive(timeout)
        return answer, conn.closed


def send_in_one_write(port, ca_file, data, timeout=20.0):
    """What an ordinary HTTP client does: the whole request in one write, then read the answer
    until the server closes. Returns the bytes received ("" when the connection was reset
    before any answer arrived)."""
    context = ssl.create_default_context(cafile=ca_file)
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    out = b""
    with context.wrap_socket(raw, server_hostname="127.0.0.1") as conn:
        try:
            conn.sendall(data)
        except OSError:
            pass  # the server answered and closed before reading everything; read what it said
        try:
            while True:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                out += chunk
        except OSError:
            pass
    return out


def status_line(answer):
    """b"HTTP/1.1 431 ..." -> 431; None when no HTTP reply came."""
    if not answer.startswith(b"HTTP/1."):
        return None
    try:
        return int(answer.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return None


def rss_kib(pid):
    """Resident set size of `pid` from /proc, in KiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")

