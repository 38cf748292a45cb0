"""What the fake servers share: a handler base class that answers with fixed bytes."""
from http.server import BaseHTTPRequestHandler


class ReplyingHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive handler with reply(code, body, content_type)."""
    protocol_version = "HTTP/1.1"

    def reply(self, code, body, content_type="application/json"):
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
