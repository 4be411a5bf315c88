"""Real HTTP servers on loopback ports for the tests: an OpenAI-compatible LLM, a webhook receiver."""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

Responder = Callable[[str, str, dict, dict | None], tuple[int, dict]]


class LoopbackServer:
    """Answers every request with ``respond(method, path, headers, json_body)``; records them."""

    def __init__(self, respond: Responder):
        self.respond = respond
        self.requests: list[dict] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                headers = dict(self.headers)
                owner.requests.append({"method": self.command, "path": self.path, "headers": headers,
                                       "body": body, "time": time.time()})
                code, payload = owner.respond(self.command, self.path, headers, body)
                data = json.dumps(payload).encode()
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_POST = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class FakeLLM(LoopbackServer):
    """A deterministic OpenAI-compatible chat server: ``reply(prompt)`` is the answer."""

    def __init__(self, reply=lambda prompt: prompt.upper(), delay: float = 0.0, api_key: str = ""):
        self.reply, self.delay, self.api_key = reply, delay, api_key
        super().__init__(self._chat)
        self.base_url = self.url + "/v1"

    def _chat(self, method, path, headers, body):
        if method == "GET":
            return 200, {"object": "list", "data": [{"id": "test", "object": "model"}]}
        if self.api_key and headers.get("Authorization") != f"Bearer {self.api_key}":
            return 401, {"error": {"message": "bad key"}}
        time.sleep(self.delay)
        return 200, {
            "id": "chatcmpl-test", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model", "test"),
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": self.reply(body["messages"][-1]["content"])}}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }


class Receiver(LoopbackServer):
    """A webhook endpoint that answers with the given status codes in turn (the last repeats)."""

    def __init__(self, codes=(200,)):
        self.codes = list(codes)
        super().__init__(self._answer)

    def _answer(self, method, path, headers, body):
        code = self.codes.pop(0) if len(self.codes) > 1 else self.codes[0]
        return code, {"received": True}
