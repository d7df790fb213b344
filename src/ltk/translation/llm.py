"""An LLM as the translation engine, over any OpenAI-compatible endpoint (vLLM, llama.cpp server, an API).

Each segment is one chat request whose system prompt names the source and target languages (greedy:
temperature 0). Requests run concurrently up to a limit, are retried with backoff, and every finished batch
goes into the same content-addressed cache as the seq2seq engines, so a run whose server dies keeps what
was done and a rerun continues. The engine's "tokens" are UTF-8 bytes: the shared batching loop sorts and
groups by length as for any model, and the cache stores the output like any other.

Before any work the endpoint is probed (``GET {endpoint}/models``): unreachable, not OpenAI-compatible or
not serving the model are configuration errors (exit 2), with nothing written.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ltk.errors import LtkError, UsageError
from ltk.translation.engines import GenerationSettings
from ltk.translation.families import LICENCES, language_name

PROMPT = (
    "You are a professional translator. Translate the user's text from {src_name} ({src}) into "
    "{tgt_name} ({tgt}). Reply with the translation only: no notes, no quotes, no explanations. Keep "
    "every marker like [[0]] exactly as it is."
)
RETRY_STATUSES = (408, 409, 425, 429, 500, 502, 503, 504)


class LlmEngine:
    """Translation by a chat model behind an OpenAI-compatible endpoint (see the module docstring)."""

    backend = "endpoint"
    family = "llm"
    licence = LICENCES["llm"]
    precision = "endpoint"

    def __init__(
        self,
        endpoint: str,
        model: str,
        *,
        settings: GenerationSettings | None = None,
        languages: Sequence[str] = (),
        concurrency: int = 4,
        timeout: float = 120.0,
        max_retries: int = 4,
        backoff: float = 1.0,
        api_key_env: str = "OPENAI_API_KEY",
        sleep: Callable[[float], None] = time.sleep,
    ):
        if not endpoint.startswith(("http://", "https://")):
            raise UsageError(
                f"the llm engine needs an endpoint URL, got {endpoint!r}"
                "\n    fix: --endpoint http://127.0.0.1:8000/v1 (or instructions.endpoint in the langpack)"
            )
        if concurrency < 1:
            raise UsageError(f"concurrency must be at least 1, got {concurrency}")
        self.endpoint = endpoint.rstrip("/")
        self.name = model
        self.settings = settings or GenerationSettings()
        self.concurrency = concurrency
        self.timeout, self.max_retries, self.backoff = timeout, max_retries, backoff
        self.api_key_env, self.sleep = api_key_env, sleep
        self.generate_calls = 0
        self.requests_made = 0
        self._src = "eng_Latn"
        for code in languages:
            self.code(code)
        self._probe()
        # The model and the prompt identify a translation (not the endpoint: a moved server keeps its cache).
        prompt_id = hashlib.sha256(PROMPT.encode()).hexdigest()[:12]
        self.model_key = f"llm:{model}:prompt-{prompt_id}"

    # ------------------------------------------------------------------ the engine interface
    def supported_languages(self) -> list[str]:
        return []  # any language the model knows: the prompt names it

    def code(self, flores: str) -> str:
        if "_" not in flores:
            raise UsageError(f"{flores!r} is not a FLORES-200 code like swh_Latn")
        return flores

    def encode(self, texts: Sequence[str], src: str, tgt: str | None = None) -> list[list[int]]:
        self._src = src  # generate() builds the prompt; translate_segments encodes a shard, then generates it
        return [list(t.encode("utf-8")) for t in texts]

    def generate(self, batch: Sequence[Sequence[int]], tgt: str, limits: Sequence[int]) -> list[list[int]]:
        texts = [bytes(row).decode("utf-8") for row in batch]
        src = self._src
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(texts))) as pool:
            outputs = list(pool.map(lambda t: self.translate_one(t, src, tgt), texts))
        self.generate_calls += 1
        return [list(o.encode("utf-8")) for o in outputs]

    def decode(self, ids: Sequence[int]) -> str:
        return bytes(ids).decode("utf-8", "replace").strip()

    # ------------------------------------------------------------------ HTTP
    def translate_one(self, text: str, src: str, tgt: str) -> str:
        system = PROMPT.format(src_name=language_name(src), src=src, tgt_name=language_name(tgt), tgt=tgt)
        payload = {
            "model": self.name,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": text}],
            "temperature": 0,
            "seed": 0,
            "max_tokens": self.settings.max_new_tokens,
        }
        last_error = ""
        for attempt in range(self.max_retries + 1):
            if attempt:
                self.sleep(min(30.0, self.backoff * 2 ** (attempt - 1)))
            try:
                body = self._request("POST", "/chat/completions", payload)
                return str(body["choices"][0]["message"]["content"] or "").strip()
            except urllib.error.HTTPError as exc:
                last_error = f"HTTP {exc.code}: {exc.read().decode('utf-8', 'replace')[:200]}"
                if exc.code not in RETRY_STATUSES:
                    break
            except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
                last_error = str(getattr(exc, "reason", exc))
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                last_error = f"the reply is not JSON ({exc})"
            except (KeyError, IndexError, TypeError):
                last_error = "the reply has no choices[0].message.content"
        raise LtkError(
            f"translation endpoint {self.endpoint} (model {self.name}) failed {attempt + 1} times; last error: "
            f"{last_error}\n    every batch finished before this is cached: rerun the same command to continue"
        )

    def _request(self, method: str, path: str, payload: dict[str, Any] | None = None) -> Any:
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.api_key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        data = json.dumps(payload).encode("utf-8") if payload is not None else None
        request = urllib.request.Request(self.endpoint + path, data=data, headers=headers, method=method)
        self.requests_made += 1
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            return json.loads(response.read().decode("utf-8"))

    def _probe(self) -> None:
        """Configuration errors before any work: unreachable, not OpenAI-compatible, model not served."""
        url = self.endpoint + "/models"
        try:
            body = self._request("GET", "/models")
        except urllib.error.HTTPError as exc:
            hint = f" (check the API key in ${self.api_key_env})" if exc.code in (401, 403) else ""
            raise UsageError(
                f"translation endpoint {url} answered HTTP {exc.code}{hint}"
                "\n    fix: give the base URL of an OpenAI-compatible API, e.g. http://127.0.0.1:8000/v1"
            ) from None
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
            raise UsageError(
                f"cannot reach translation endpoint {url}: {getattr(exc, 'reason', exc)}"
                "\n    fix: start the server (vLLM, llama.cpp server, ...) or correct --endpoint"
            ) from None
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = None
        served = body.get("data") if isinstance(body, dict) else None
        if not isinstance(served, list):
            raise UsageError(
                f"translation endpoint {url} does not answer like an OpenAI-compatible API (no JSON "
                "{'data': [...]} list of models)\n    fix: give the base URL that ends in /v1"
            )
        names = sorted(str(m.get("id")) for m in served if isinstance(m, dict))
        if self.name not in names:
            raise UsageError(
                f"translation endpoint {self.endpoint} does not serve model {self.name!r}; it serves: "
                f"{', '.join(names) or 'nothing'}\n    fix: --model one of those"
            )
