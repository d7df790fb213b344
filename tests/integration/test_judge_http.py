"""The LLM judge over real HTTP: ltk's OpenAI-compatible server on 127.0.0.1 serves the tiny random LLaMA
(its verdicts are noise, so the assertions are about requests, caching, retries and crash safety)."""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path

import pytest
from _eval_build import make_build
from click.testing import CliRunner

from ltk.cli import main
from ltk.evaluate.judge import HttpJudge, JudgeCache, JudgeUnavailable, judge_samples
from ltk.evaluate.serve import ChatServer

SAMPLES = [
    {"id": f"s{i}", "prompt": f"Kodi funso {i} ndi chiyani?", "answer": f"Yankho {i}.", "reference": None}
    for i in range(6)
]


class FlakyServer(ChatServer):
    """Returns 500 for the next ``fail_next`` requests; shuts itself down after ``stop_after`` answers."""

    fail_next = 0
    stop_after: int | None = None
    hits = 0

    def respond(self, payload, messages):
        self.hits += 1
        if self.fail_next > 0:
            self.fail_next -= 1
            return 500, {"error": {"message": "injected failure"}}
        status, body = super().respond(payload, messages)
        if self.stop_after is not None and len(self.requests) >= self.stop_after:

            def stop() -> None:
                self.shutdown()
                self.server_close()

            threading.Thread(target=stop, daemon=True).start()
        return status, body


@pytest.fixture(scope="module")
def served(tiny_llama_dir: Path):
    plain = ChatServer.for_model(str(tiny_llama_dir))
    server = FlakyServer(plain.generate_fn, "tiny-judge")
    plain.server_close()
    server.start_background()
    yield server
    server.shutdown()
    server.server_close()


def backend(url: str, **kw) -> HttpJudge:
    return HttpJudge(url, "tiny-judge", max_tokens=12, backoff=0.01, timeout=5, sleep=lambda s: None, **kw)


def test_requests_cache_and_retries(served: FlakyServer, tmp_path: Path) -> None:
    cache_path = tmp_path / "judge-cache.jsonl"
    judge = backend(served.base_url)
    before = len(served.requests)
    first = judge_samples(
        SAMPLES[:3], judge, JudgeCache.open(cache_path), language="Chichewa", progress=False
    )
    made = served.requests[before:]
    assert len(made) == 3 and judge.requests_made == 3
    assert all(r["model"] == "tiny-judge" and r["temperature"] == 0 for r in made)
    assert (
        "Yankho 0." in made[0]["messages"][-1]["content"]
        and "harmlessness" in made[0]["messages"][-1]["content"]
    )
    assert first["answers"] == 3 and first["new_judgements"] == 3
    assert first["tokens"]["prompt"] > 100 and first["tokens"]["completion"] > 0
    assert len(cache_path.read_text().splitlines()) == 3

    # Second run: everything comes from the cache, no request at all.
    judge2 = backend(served.base_url)
    again = judge_samples(
        SAMPLES[:3], judge2, JudgeCache.open(cache_path), language="Chichewa", progress=False
    )
    assert judge2.requests_made == 0 and len(served.requests) == before + 3
    assert again["cached_judgements"] == 3 and again["scores"] == first["scores"]

    # Two 500s, then success: the client retries and the judgement completes.
    served.fail_next = 2
    hits = served.hits
    judge3 = backend(served.base_url, max_retries=3)
    third = judge_samples(
        SAMPLES[:4], judge3, JudgeCache.open(cache_path), language="Chichewa", progress=False
    )
    assert served.hits - hits == 3 and judge3.requests_made == 3
    assert third["new_judgements"] == 1 and third["cached_judgements"] == 3


def test_server_dies_mid_run_judgements_are_kept(
    tiny_llama_dir: Path, served: FlakyServer, tmp_path: Path
) -> None:
    dying = FlakyServer(served.generate_fn, "tiny-judge")
    dying.stop_after = 2
    dying.start_background()
    cache_path = tmp_path / "judge-cache.jsonl"
    judge = backend(dying.base_url, max_retries=2)
    with pytest.raises(JudgeUnavailable) as err:
        judge_samples(SAMPLES, judge, JudgeCache.open(cache_path), language="Chichewa", progress=False)
    message = str(err.value)
    assert "failed 3 times" in message and "2 completed judgement(s) are kept" in message
    assert str(cache_path) in message
    kept = [json.loads(line) for line in cache_path.read_text().splitlines()]
    assert [k["id"] for k in kept] == ["s0", "s1"]

    # The endpoint is back (another server): only the 4 missing answers are asked.
    judge2 = backend(served.base_url)
    result = judge_samples(SAMPLES, judge2, JudgeCache.open(cache_path), language="Chichewa", progress=False)
    assert judge2.requests_made == 4 and result["cached_judgements"] == 2 and result["answers"] == 6


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_cli_judge_over_http_and_unreachable_endpoint(
    tiny_llama_dir: Path, served: FlakyServer, tmp_path: Path
) -> None:
    build = make_build(tmp_path / "build")
    run = tmp_path / "runs" / "j"
    runner = CliRunner()
    args = [
        "eval",
        str(tiny_llama_dir),
        "--build",
        str(build),
        "--out",
        str(run),
        "--metrics",
        "judge",
        "--max-new-tokens",
        "8",
        "--judge-model",
        "tiny-judge",
    ]
    res = runner.invoke(main, [*args, "--judge-url", served.base_url])
    assert res.exit_code == 0, res.output
    judged = json.loads((run / "eval" / "base.json").read_text())["metrics"]["judge"]
    assert judged["answers"] == 4 and judged["method"]["rubric"] == "zhao2024-five-axes-v1"
    assert len((run / "eval" / "judge-cache.jsonl").read_text().splitlines()) == 4

    dead = f"http://127.0.0.1:{free_port()}/v1"
    run2 = tmp_path / "runs" / "dead"
    res = runner.invoke(main, [*args, "--judge-url", dead, "--judge-retries", "1", "--out", str(run2)])
    assert res.exit_code == 1
    assert f"judge endpoint {dead} (model tiny-judge) failed 2 times" in res.output
    assert "rerun the same command" in res.output and "Traceback" not in res.output
    # The rest of the evaluation is still written, with the judge's error recorded.
    data = json.loads((run2 / "eval" / "base.json").read_text())
    assert "failed 2 times" in data["metrics"]["judge"]["error"]
