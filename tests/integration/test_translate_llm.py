"""The LLM engine over real HTTP: a small OpenAI-compatible server on the loopback address (a deterministic
translator: it reverses the word order and tags the target language, keeping ``[[0]]`` masks) answers
``ltk translate --engine llm``; ltk's own server running a tiny random LLaMA (SmolLM2's tokenizer and chat
template) answers it end to end too. The prompt names both languages, decoding is greedy, requests stay under
the concurrency limit, the cache is shared; a server that dies mid-run loses nothing and a rerun completes;
unreachable, non-OpenAI and wrong-model endpoints are configuration errors (exit 2) with nothing written.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

MODEL = "tiny-translator"


class Translator(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, *, die_after: int | None = None, garbage: bool = False, delay: float = 0.0):
        super().__init__(("127.0.0.1", 0), Handler)
        self.die_after, self.garbage, self.delay = die_after, garbage, delay
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        self.inflight = self.max_inflight = 0
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class Handler(BaseHTTPRequestHandler):
    server: Translator

    def log_message(self, *args) -> None:
        pass

    def _send(self, status: int, body: bytes, kind: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.server.garbage:
            self._send(200, b"<html><body>welcome to my blog</body></html>", "text/html")
        elif self.path == "/v1/models":
            self._send(
                200, json.dumps({"object": "list", "data": [{"id": MODEL, "object": "model"}]}).encode()
            )
        else:
            self._send(404, b"{}")

    def do_POST(self) -> None:
        payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        server = self.server
        with server.lock:
            if server.die_after is not None and len(server.requests) >= server.die_after:
                # The server dies: this connection is dropped unanswered and nothing listens afterwards.
                threading.Thread(target=server.stop, daemon=True).start()
                self.close_connection = True
                return
            server.requests.append(payload)
            server.inflight += 1
            server.max_inflight = max(server.max_inflight, server.inflight)
        time.sleep(server.delay)
        system, text = payload["messages"][0]["content"], payload["messages"][1]["content"]
        target = re.search(r"into (.+?) \((\w+)\)", system).group(2)
        answer = f"<{target}> " + " ".join(reversed(text.split()))
        with server.lock:
            server.inflight -= 1
        self._send(
            200, json.dumps({"choices": [{"message": {"role": "assistant", "content": answer}}]}).encode()
        )


@pytest.fixture
def server():
    srv = Translator()
    yield srv
    srv.stop()


def _write_input(path: Path, n: int) -> None:
    words = ["river", "mountain", "sea", "wind", "poem", "child", "sky", "blue", "alpha", "beta"]
    with path.open("w", encoding="utf-8") as fh:
        for i in range(n):
            instruction = " ".join(words[(i + k) % len(words)] for k in range(3 + i % 5)) + f" number {i}."
            fh.write(
                json.dumps(
                    {"id": f"r{i}", "instruction": instruction, "output": f"See https://x.org/{i} now."}
                )
            )
            fh.write("\n")


def _cmd(src: Path, dst: Path, cache: Path, endpoint: str, *extra: str) -> list[str]:
    return [
        str(Path(sys.executable).parent / "ltk"), "translate", str(src), str(dst), "--engine", "llm",
        "--endpoint", endpoint, "--model", MODEL, "--tgt", "swh_Latn", "--cache-dir", str(cache),
        "--batch-tokens", "200", "--retries", "1", "--quiet", *extra,
    ]  # fmt: skip


def _run(cmd: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)


def test_prompt_greedy_concurrency_and_cache(tmp_path: Path) -> None:
    from ltk.translation import GenerationSettings, TranslationCache, load_engine, translate_segments

    srv = Translator(delay=0.05)
    try:
        engine = load_engine(
            MODEL, family="llm", endpoint=srv.url, languages=("eng_Latn", "swh_Latn"), concurrency=3,
            settings=GenerationSettings(max_new_tokens=64),
        )  # fmt: skip
        segments = [f"The sea number {i} is blue." for i in range(12)] + ["Visit [[0]] today."]
        first = translate_segments(
            engine, segments, "eng_Latn", "swh_Latn", cache=TranslationCache(tmp_path / "c"), progress=False
        )
        assert first.text["The sea number 3 is blue."] == "<swh_Latn> blue. is 3 number sea The"
        assert first.text["Visit [[0]] today."] == "<swh_Latn> today. [[0]] Visit"  # masks survive
        assert len(srv.requests) == 13
        request = srv.requests[0]
        assert request["model"] == MODEL and request["temperature"] == 0 and request["max_tokens"] == 64
        assert "from English (eng_Latn) into Swahili (swh_Latn)" in request["messages"][0]["content"]
        assert 1 < srv.max_inflight <= 3  # concurrent, never above the limit
        again = translate_segments(
            engine, segments, "eng_Latn", "swh_Latn", cache=TranslationCache(tmp_path / "c"), progress=False
        )
        assert len(srv.requests) == 13 and again.stats.cached == 13 and again.text == first.text
        # Khmer (another script) into English: the prompt names it
        translate_segments(
            engine, ["មនុស្សទាំងអស់ កើតមកមានសេរីភាព"], "khm_Khmr", "eng_Latn",
            cache=TranslationCache(tmp_path / "c"), progress=False,
        )  # fmt: skip
        assert "from Khmer (khm_Khmr) into English (eng_Latn)" in srv.requests[-1]["messages"][0]["content"]
    finally:
        srv.stop()


@pytest.mark.slow
def test_server_dying_mid_run_loses_nothing_and_rerun_completes(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    _write_input(src, 40)
    reference = tmp_path / "reference.jsonl"
    healthy = Translator()
    try:
        done = _run(_cmd(src, reference, tmp_path / "cache-ref", healthy.url))
    finally:
        healthy.stop()
    assert done.returncode == 0, done.stderr
    total = len(healthy.requests)
    assert total > 20

    out, cache = tmp_path / "out.jsonl", tmp_path / "cache"
    dying = Translator(die_after=total // 3)
    failed = _run(_cmd(src, out, cache, dying.url))
    assert failed.returncode == 1, failed.stderr  # a runtime failure, not a configuration error
    assert "failed 2 times" in failed.stderr and "rerun the same command to continue" in failed.stderr
    assert not out.exists()  # nothing partial
    import sqlite3

    with sqlite3.connect(cache / "translations" / "translations-rank0.sqlite") as conn:
        kept = conn.execute("SELECT COUNT(*) FROM translations").fetchone()[0]
    assert 0 < kept <= total // 3  # every committed batch survived

    revived = Translator()  # a new server on another port: the cache does not depend on the endpoint
    try:
        resumed = _run(_cmd(src, out, cache, revived.url))
    finally:
        revived.stop()
    assert resumed.returncode == 0, resumed.stderr
    assert out.read_bytes() == reference.read_bytes()
    assert len(revived.requests) == total - kept  # only what was missing; nothing translated twice


def test_unreachable_garbage_and_wrong_model_are_configuration_errors(
    tmp_path: Path, server: Translator
) -> None:
    src = tmp_path / "in.jsonl"
    _write_input(src, 3)
    out = tmp_path / "out.jsonl"
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
    unreachable = _run(_cmd(src, out, tmp_path / "c", closed))
    assert unreachable.returncode == 2
    assert f"cannot reach translation endpoint {closed}/models" in unreachable.stderr
    assert "fix: start the server" in unreachable.stderr

    garbage = Translator(garbage=True)
    try:
        bad = _run(_cmd(src, out, tmp_path / "c", garbage.url))
    finally:
        garbage.stop()
    assert bad.returncode == 2
    assert "does not answer like an OpenAI-compatible API" in bad.stderr

    wrong = _run(_cmd(src, out, tmp_path / "c", server.url)[:-1] + ["--quiet", "--model", "gpt-9"])
    assert wrong.returncode == 2
    assert "does not serve model 'gpt-9'; it serves: tiny-translator" in wrong.stderr
    assert not out.exists() and not server.requests  # nothing written, nothing translated


@pytest.mark.slow
def test_compare_engines_on_the_eval_set(tmp_path: Path, server: Translator) -> None:
    """`ltk translate --compare`: NLLB, OPUS-MT, an LLM endpoint and M2M-100 (which has no Chichewa) on
    ny's held-out verse pairs: table on stdout, compare.{json,md,png}, a row saying why M2M-100 is out."""
    import test_translate
    import test_translation_engines as fam
    from click.testing import CliRunner

    from ltk.cli import main

    build = tmp_path / "build"
    pairs = [
        {"id": f"JHN.1.{i}", "target": f"Pachiyambi panali Mawu nambala {i}.", "english": f"In the beginning was the Word {i}.",
         "group": "JHN"}
        for i in range(1, 13)
    ]  # fmt: skip
    import pyarrow as pa
    import pyarrow.parquet as pq

    (build / "ny" / "parallel").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(pairs), build / "ny" / "parallel" / "bible-verses-heldout.parquet")
    nllb = test_translate.build_tiny_nllb(tmp_path / "nllb")
    opus = tmp_path / "opus"
    fam.build_tiny_marian(opus / "opus-mt-en-ny")
    fam.build_tiny_marian(opus / "opus-mt-ny-en")
    m2m = fam.build_tiny_m2m100(tmp_path / "m2m")
    out = tmp_path / "cmp"
    args = [
        "translate", "--langpack", "ny", "--build-root", str(build), "--out", str(out), "--dtype", "float32",
        "--compare", str(nllb), "--compare", f"marian={opus}/opus-mt-{{src}}-{{tgt}}", "--compare", f"llm={MODEL}",
        "--compare", f"m2m100={m2m}", "--endpoint", server.url, "--quiet",
    ]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    table = (out / "compare.md").read_text()
    assert "4 engine(s) on 12 pairs of bible-verses-heldout (ny, nya_Latn)" in table
    data = json.loads((out / "compare.json").read_text())
    rows = {r["engine"]: r for r in data["engines"]}
    assert set(rows) == {"nllb", "marian", "llm", "m2m100"}  # the model folder was recognised as NLLB
    assert "does not support nya_Latn" in rows["m2m100"]["error"]
    assert "not available: M2M-100 model" in table
    for name in ("nllb", "marian", "llm"):
        for direction in ("en->xx", "xx->en"):
            cell = rows[name][direction]
            assert 0 <= cell["chrf"] <= 100 and 0 <= cell["bleu"] <= 100 and cell["segments"] == 12
            assert cell["segments_per_s"] > 0
        assert set(rows[name]["tier_seconds"]) == {"1000", "10000", "50000"}
        assert rows[name]["tier_seconds"]["10000"] == pytest.approx(
            10 * rows[name]["tier_seconds"]["1000"], rel=0.01
        )
    # the LLM's word-reversal keeps the words: its chrF towards English beats the random models'
    assert rows["llm"]["xx->en"]["chrf"] > rows["nllb"]["xx->en"]["chrf"]
    assert rows["nllb"]["licence"] == "CC-BY-NC-4.0" and rows["marian"]["licence"] == "CC-BY-4.0"
    assert (out / "compare.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| nllb |" in result.output  # the table is printed too
    assert len(server.requests) == 24  # 12 pairs, both ways, each once


class RecordingChatServer:
    """ltk's own OpenAI-compatible server (``ltk.evaluate.serve.ChatServer``) running a tiny random LLaMA
    with SmolLM2's real tokenizer and ChatML template; it records the prompt the model is given."""

    def __init__(self, model_dir: Path, name: str):
        from transformers import AutoTokenizer

        from ltk.evaluate.generation import render_prompt
        from ltk.evaluate.serve import ChatServer

        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        plain = ChatServer.for_model(str(model_dir), device="cpu")
        plain.server_close()
        prompts: list[str] = []

        def generate_fn(messages, max_tokens):
            prompts.append(render_prompt(tokenizer, messages))  # exactly what the model is fed
            return plain.generate_fn(messages, max_tokens)

        self.server, self.prompts = ChatServer(generate_fn, name), prompts
        self.server.start_background()

    @property
    def url(self) -> str:
        return self.server.base_url

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_llm_engine_against_a_tiny_local_model(tokenizer_dir: Path, tmp_path: Path) -> None:
    """`ltk translate --engine llm` end to end over loopback HTTP against a real (tiny, random) causal LM:
    the prompt the model receives names both languages in its chat template, greedy decoding gives the
    same bytes on a fresh rerun, and a rerun on the cache makes no request at all."""
    import torch

    torch.set_num_threads(1)
    src = tmp_path / "in.jsonl"
    _write_input(src, 4)
    from conftest import build_tiny_llama

    # Its own output layer: a random model with tied embeddings greedily repeats its last input token (here
    # the template's final newline), so every answer would be whitespace, stripped to nothing.
    model = build_tiny_llama(tokenizer_dir, tmp_path / "model", tie_word_embeddings=False)
    served = RecordingChatServer(model, "tiny-llama")
    try:

        def translate(out: Path, cache: Path) -> subprocess.CompletedProcess:
            cmd = [*_cmd(src, out, cache, served.url), "--max-new-tokens", "12"]
            cmd[cmd.index(MODEL)] = "tiny-llama"
            return _run(cmd)

        first = translate(tmp_path / "a.jsonl", tmp_path / "cache-a")
        assert first.returncode == 0, first.stderr
        requests = len(served.server.requests)
        assert requests == 5  # 4 distinct instructions; the answers are one sentence once URLs are masked
        assert all(r["temperature"] == 0 and r["max_tokens"] == 12 for r in served.server.requests)
        prompt = served.prompts[0]
        assert prompt.startswith("<|im_start|>system\nYou are a professional translator.")
        assert "from English (eng_Latn) into Swahili (swh_Latn)" in prompt
        assert prompt.endswith("<|im_start|>assistant\n")  # the model's own template, ready to answer
        records = [json.loads(line) for line in (tmp_path / "a.jsonl").read_text().splitlines()]
        assert len(records) == 4 and all(r["messages"][0]["role"] == "user" for r in records)
        assert all(r["messages"][0]["content"].strip() for r in records)  # the model's words, not nothing

        fresh = translate(tmp_path / "b.jsonl", tmp_path / "cache-b")  # new cache: the model runs again
        assert fresh.returncode == 0, fresh.stderr
        assert len(served.server.requests) == 2 * requests
        assert (tmp_path / "b.jsonl").read_bytes() == (tmp_path / "a.jsonl").read_bytes()  # greedy

        cached = translate(tmp_path / "c.jsonl", tmp_path / "cache-a")
        assert cached.returncode == 0, cached.stderr
        assert len(served.server.requests) == 2 * requests  # zero requests: everything from the cache
        assert (tmp_path / "c.jsonl").read_bytes() == (tmp_path / "a.jsonl").read_bytes()
    finally:
        served.stop()
