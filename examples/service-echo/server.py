"""HTTP + WebSocket echo server (standard library only).

GET  /healthz          -> ok
GET  /                 -> greeting, and what the request looked like (path, X-Forwarded-*)
POST /echo             -> the body back
GET  /stream           -> "first" now, then "second" once /release was called (tests streaming)
GET  /release          -> lets /stream finish
GET  /ws               -> WebSocket: every text message is sent back
"""
import base64
import hashlib
import json
import os
import struct
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
release = threading.Event()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # A response is two writes (head, then body): with Nagle's algorithm the body waits for
    # the client's delayed ACK of the head, about 40 ms on every kept-alive request.
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):
        if self.path != "/healthz":  # readiness probes and load tests would drown the log
            print("%s %s" % (self.command, self.path), flush=True)

    def send(self, code, body, ctype="text/plain"):
        b = body.encode() if isinstance(body, str) else body
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)

    def do_GET(self):
        if self.path == "/healthz":
            return self.send(200, "ok\n")
        if self.path == "/release":
            release.set()
            return self.send(200, "released\n")
        if self.path == "/stream":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.chunk("first\n")
            release.wait(60)
            release.clear()
            self.chunk("second\n")
            self.wfile.write(b"0\r\n\r\n")
            return
        if self.path == "/ws" and self.headers.get("Upgrade", "").lower() == "websocket":
            return self.websocket()
        info = {"greeting": os.environ.get("GREETING", ""), "path": self.path,
                "forwarded_for": self.headers.get("X-Forwarded-For"),
                "forwarded_host": self.headers.get("X-Forwarded-Host"),
                "forwarded_proto": self.headers.get("X-Forwarded-Proto"),
                "authorization": self.headers.get("Authorization")}
        self.send(200, json.dumps(info) + "\n", "application/json")

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        self.send(200, self.rfile.read(n), self.headers.get("Content-Type", "application/octet-stream"))

    def chunk(self, s):
        b = s.encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(b), b))
        self.wfile.flush()

    def websocket(self):
        key = self.headers["Sec-WebSocket-Key"]
        accept = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.end_headers()
        self.wfile.flush()
        while True:
            head = self.rfile.read(2)
            if len(head) < 2:
                return
            opcode, n = head[0] & 0x0F, head[1] & 0x7F
            if n == 126:
                n = struct.unpack(">H", self.rfile.read(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self.rfile.read(8))[0]
            mask = self.rfile.read(4) if head[1] & 0x80 else b"\0\0\0\0"
            data = bytes(b ^ mask[i % 4] for i, b in enumerate(self.rfile.read(n)))
            if opcode == 8:  # close
                self.frame(8, data[:2])
                return
            if opcode == 9:  # ping
                self.frame(10, data)
                continue
            if opcode in (1, 2):
                self.frame(opcode, data)

    def frame(self, opcode, data):
        n = len(data)
        if n < 126:
            head = struct.pack(">BB", 0x80 | opcode, n)
        elif n < 65536:
            head = struct.pack(">BBH", 0x80 | opcode, 126, n)
        else:
            head = struct.pack(">BBQ", 0x80 | opcode, 127, n)
        self.wfile.write(head + data)
        self.wfile.flush()


class Server(ThreadingHTTPServer):
    # The listen backlog: the default 5 drops (and the client retries after a second)
    # connections opened in a burst, e.g. by a proxy filling its pool.
    request_queue_size = 1024

    def handle_error(self, request, client_address):
        if isinstance(sys.exc_info()[1], ConnectionError):
            return  # a client that went away mid-request: nothing to report
        super().handle_error(request, client_address)


print("echo server on :8080", flush=True)
Server(("0.0.0.0", 8080), Handler).serve_forever()
