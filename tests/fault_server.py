"""An OpenAI-compatible chat endpoint on 127.0.0.1 that misbehaves on a script: each request takes
the next action (an HTTP status, a stall past the client's timeout, or a reply), and requests past
the end of the script get a reply. Every request is recorded."""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FaultServer:
    def __init__(self, script: list[tuple] | None = None, reply: str = '{"steps": ["a", "b"], "conclusion": "c"}'):
        self.script, self.reply = list(script or []), reply
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                    action = server.script.pop(0) if server.script else ("ok",)
                kind = action[0]
                if kind == "stall":
                    time.sleep(action[1])
                    kind = "ok"
                if kind == "status":
                    payload = json.dumps({"error": {"message": f"scripted {action[1]}"}}).encode()
                    self.send_response(action[1])
                    for key, value in (action[2] if len(action) > 2 else {}).items():
                        self.send_header(key, value)
                else:
                    text = action[1] if len(action) > 1 else server.reply
                    payload = json.dumps({"id": "x", "object": "chat.completion", "choices": [
                        {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                        "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}}).encode()
                    self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                try:
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout): nothing to deliver

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "FaultServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
