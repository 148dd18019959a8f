"""A local HTTP receiver for incident_notify tests: records every request, answers from a script."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
    """``with Receiver() as rx: rx.script([(503, "", {}), (202, {...}, {})]); ... rx.requests``.

    Each request takes the next scripted answer; the last one repeats. The default answer is 200 ``ok``.
    """

    def __init__(self) -> None:
        self.requests: list = []
        self._answers: list = [(200, "ok", {})]
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    receiver.requests.append({
                        "method": "POST",
                        "path": self.path,
                        "headers": {k.lower(): v for k, v in self.headers.items()},
                        "json": json.loads(body) if body else None,
                    })
                    status, answer, headers = receiver._answers[0] if len(receiver._answers) == 1 else receiver._answers.pop(0)
                data = (json.dumps(answer) if isinstance(answer, (dict, list)) else str(answer)).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json" if isinstance(answer, (dict, list)) else "text/plain")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:  # keep pytest output clean
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    def script(self, answers: list) -> None:
        with self._lock:
            self._answers = list(answers)

    def __enter__(self) -> "Receiver":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
