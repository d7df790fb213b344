"""A minimal OpenAI-compatible ``/v1/chat/completions`` server for a local transformers model.

Useful as a judge endpoint on a machine with a GPU, and used by the tests to exercise the judge over real
HTTP. Single model, greedy decoding, one request generated at a time. Not for production traffic.

    from ltk.evaluate.serve import ChatServer
    server = ChatServer.for_model("path/to/model", port=8000); server.serve_forever()
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _Handler(BaseHTTPRequestHandler):
    server: ChatServer

    def log_message(self, format: str, *args: Any) -> None:  # quiet by default
        pass

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path.rstrip("/") == "/v1/models":
            self._send(200, {"object": "list", "data": [{"id": self.server.model_name, "object": "model"}]})
        else:
            self._send(404, {"error": {"message": f"no route {self.path}"}})

    def do_POST(self) -> None:
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._send(404, {"error": {"message": f"no route {self.path}"}})
            return
        try:
            length = int(self.headers.get("Content-Length", "0"))
            payload = json.loads(self.rfile.read(length) or b"{}")
            messages = payload["messages"]
        except (ValueError, KeyError) as exc:
            self._send(400, {"error": {"message": f"bad request: {exc}"}})
            return
        status, body = self.server.respond(payload, messages)
        self._send(status, body)


class ChatServer(ThreadingHTTPServer):
    """Serves ``generate_fn(messages, max_tokens) -> (text, prompt_tokens, completion_tokens)``.

    ``requests`` records every parsed request payload (tests assert on it); subclasses may override
    ``respond`` (e.g. to inject failures)."""

    daemon_threads = True

    def __init__(self, generate_fn: Any, model_name: str, host: str = "127.0.0.1", port: int = 0):
        super().__init__((host, port), _Handler)
        self.generate_fn = generate_fn
        self.model_name = model_name
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/v1"

    def respond(self, payload: dict[str, Any], messages: list[dict[str, str]]) -> tuple[int, dict[str, Any]]:
        with self._lock:  # one generation at a time: the model is not thread-safe
            self.requests.append(payload)
            text, n_in, n_out = self.generate_fn(messages, int(payload.get("max_tokens") or 128))
        return 200, {
            "id": f"chatcmpl-{len(self.requests)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model_name,
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
            ],
            "usage": {"prompt_tokens": n_in, "completion_tokens": n_out, "total_tokens": n_in + n_out},
        }

    @classmethod
    def for_model(
        cls, model: str, host: str = "127.0.0.1", port: int = 0, device: str | None = None
    ) -> ChatServer:
        from ltk.evaluate.generation import generate_with_counts, render_prompt
        from ltk.evaluate.loading import load_model

        loaded = load_model(model, device=device)

        def generate_fn(messages: list[dict[str, str]], max_tokens: int) -> tuple[str, int, int]:
            ((text, n_out),) = generate_with_counts(
                loaded.model, loaded.tokenizer, [messages], max_new_tokens=max_tokens, batch_size=1
            )
            n_in = len(loaded.tokenizer(render_prompt(loaded.tokenizer, messages))["input_ids"])
            return text, n_in, n_out

        return cls(generate_fn, loaded.name, host, port)

    def start_background(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, daemon=True)
        thread.start()
        return thread
