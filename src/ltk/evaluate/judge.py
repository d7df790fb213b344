"""LLM judge on the study's five axes (accuracy, fluency, informativeness, logicality, harmlessness; 0-3).

The rubric is data (``ltk/data/judge_rubric.yml``). The judge is any OpenAI-compatible chat-completions
endpoint (base URL, model, API key read from an environment variable) or a local transformers model.
Requests are retried with exponential backoff; every completed judgement is appended to a JSONL cache at
once (and fsynced), so a crash or a dead endpoint loses nothing and a rerun asks only what is missing.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from ltk.errors import LtkError, UsageError
from ltk.log import progress as log_progress

PLACEHOLDER_RE = re.compile(r"\{(\w+)\}")
JSON_OBJECT_RE = re.compile(r"\{[^{}]*\}", re.S)
RETRY_STATUSES = {408, 409, 425, 429, 500, 502, 503, 504}


class JudgeUnavailable(LtkError):
    """The judge endpoint stayed unreachable after all retries."""


def fill(template: str, values: dict[str, Any]) -> str:
    """Substitute {name} placeholders of the template only (braces inside values stay as they are)."""
    return PLACEHOLDER_RE.sub(lambda m: str(values.get(m.group(1), m.group(0))), template)


@dataclass(frozen=True)
class Rubric:
    data: dict[str, Any]

    @classmethod
    def load(cls, path: Path | None = None) -> Rubric:
        import yaml

        if path is None:
            text = resources.files("ltk.data").joinpath("judge_rubric.yml").read_text("utf-8")
        else:
            try:
                text = Path(path).read_text("utf-8")
            except OSError as exc:
                raise UsageError(f"judge rubric {path}: cannot read ({exc})") from None
        data = yaml.safe_load(text)
        missing = [k for k in ("version", "axes", "template", "scale") if k not in (data or {})]
        if missing:
            raise UsageError(f"judge rubric {path or 'built-in'}: missing key(s) {missing}")
        return cls(data)

    @property
    def axes(self) -> list[str]:
        return list(self.data["axes"])

    @property
    def id(self) -> str:
        return f"{self.data.get('name', 'rubric')}-v{self.data['version']}"

    def messages(self, question: str, answer: str, reference: str | None, language: str) -> list[dict]:
        lo, hi = self.data["scale"]["min"], self.data["scale"]["max"]
        axes_text = "\n".join(
            f"- {name}: {fill(spec['description'], {'language': language})} "
            + "; ".join(
                f"{lvl} = {fill(str(txt), {'language': language})}" for lvl, txt in spec["levels"].items()
            )
            for name, spec in self.data["axes"].items()
        )
        example = json.dumps({name: hi for name in self.axes})
        reference_block = (
            fill(self.data.get("reference_block", ""), {"reference": reference}) if reference else ""
        )
        prompt = fill(
            self.data["template"],
            {
                "language": language,
                "question": question,
                "answer": answer,
                "reference_block": reference_block,
                "min": lo,
                "max": hi,
                "axes": axes_text,
                "example": example,
            },
        )
        messages = [{"role": "user", "content": prompt}]
        if self.data.get("system"):
            messages.insert(
                0, {"role": "system", "content": fill(self.data["system"], {"language": language})}
            )
        return messages

    def parse(self, text: str) -> dict[str, int]:
        """Scores found in a judge reply: a JSON object first, then 'axis: n' patterns. Values are clipped
        to the scale; axes not found are left out (a reply with none is 'unparsed')."""
        lo, hi = self.data["scale"]["min"], self.data["scale"]["max"]
        scores: dict[str, int] = {}
        for blob in JSON_OBJECT_RE.findall(text or ""):
            try:
                obj = json.loads(blob)
            except json.JSONDecodeError:
                continue
            if isinstance(obj, dict):
                lowered = {str(k).strip().lower(): v for k, v in obj.items()}
                for axis in self.axes:
                    value = lowered.get(axis)
                    if isinstance(value, (int, float)) and not isinstance(value, bool):
                        scores.setdefault(axis, int(round(min(hi, max(lo, value)))))
        for axis in self.axes:
            if axis not in scores:
                match = re.search(rf"{axis}\W{{0,5}}(\d+(?:\.\d+)?)", text or "", re.I)
                if match:
                    scores[axis] = int(round(min(hi, max(lo, float(match.group(1))))))
        return scores


# ----------------------------------------------------------------------------------------------- backends
@dataclass
class Completion:
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass
class HttpJudge:
    """An OpenAI-compatible endpoint: POST {base_url}/chat/completions."""

    base_url: str
    model: str
    api_key_env: str = "OPENAI_API_KEY"
    timeout: float = 120.0
    max_retries: int = 4
    backoff: float = 1.0  # seconds before the first retry; doubles each time (capped at 30 s)
    max_tokens: int = 256
    sleep: Callable[[float], None] = time.sleep
    requests_made: int = 0

    @property
    def id(self) -> str:
        return f"http:{self.model}"

    def _post(self, payload: dict[str, Any]) -> dict[str, Any]:
        url = self.base_url.rstrip("/") + "/chat/completions"
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.api_key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        request = urllib.request.Request(
            url, data=json.dumps(payload).encode(), headers=headers, method="POST"
        )
        self.requests_made += 1
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            return json.loads(response.read().decode("utf-8"))

    def complete(self, messages: list[dict[str, str]]) -> Completion:
        payload = {"model": self.model, "messages": messages, "temperature": 0, "max_tokens": self.max_tokens}
        last_error = ""
        for attempt in range(self.max_retries + 1):
            if attempt:
                self.sleep(min(30.0, self.backoff * 2 ** (attempt - 1)))
            try:
                body = self._post(payload)
            except urllib.error.HTTPError as exc:
                detail = exc.read().decode("utf-8", "replace")[:200]
                last_error = f"HTTP {exc.code}: {detail}"
                if exc.code in RETRY_STATUSES:
                    continue
                hint = " (check the API key in $" + self.api_key_env + ")" if exc.code in (401, 403) else ""
                raise LtkError(
                    f"judge endpoint {self.base_url} refused the request: {last_error}{hint}"
                ) from None
            except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
                last_error = str(getattr(exc, "reason", exc))
                continue
            except json.JSONDecodeError as exc:
                last_error = f"reply is not JSON ({exc})"
                continue
            try:
                text = body["choices"][0]["message"]["content"] or ""
            except (KeyError, IndexError, TypeError):
                last_error = f"reply has no choices[0].message.content: {str(body)[:200]}"
                continue
            usage = body.get("usage") or {}
            return Completion(
                text, int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))
            )
        raise JudgeUnavailable(
            f"judge endpoint {self.base_url} (model {self.model}) failed {self.max_retries + 1} times; "
            f"last error: {last_error}"
        )


@dataclass
class LocalJudge:
    """A local transformers chat model as the judge (greedy decoding)."""

    model: Any
    tokenizer: Any
    name: str
    max_tokens: int = 256
    requests_made: int = 0

    @property
    def id(self) -> str:
        return f"local:{self.name}"

    def complete(self, messages: list[dict[str, str]]) -> Completion:
        from ltk.evaluate.generation import generate_with_counts, render_prompt

        self.requests_made += 1
        ((text, n_out),) = generate_with_counts(
            self.model, self.tokenizer, [messages], max_new_tokens=self.max_tokens, batch_size=1
        )
        prompt_tokens = len(self.tokenizer(render_prompt(self.tokenizer, messages))["input_ids"])
        return Completion(text, prompt_tokens, n_out)


# -------------------------------------------------------------------------------------------------- cache
@dataclass
class JudgeCache:
    """Completed judgements, one JSON line each; appended and fsynced as soon as each one completes."""

    path: Path
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def open(cls, path: Path) -> JudgeCache:
        cache = cls(Path(path))
        if cache.path.exists():
            for line in cache.path.read_text("utf-8").splitlines():
                try:
                    entry = json.loads(line)
                    cache.entries[entry["key"]] = entry
                except (json.JSONDecodeError, KeyError, TypeError):
                    continue  # a line torn by a crash mid-write: that judgement is simply asked again
        return cache

    def add(self, entry: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry, sort_keys=True, ensure_ascii=False) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        self.entries[entry["key"]] = entry


def cache_key(judge_id: str, rubric: Rubric, question: str, answer: str, reference: str | None) -> str:
    blob = json.dumps([judge_id, rubric.id, question, answer, reference or ""], ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


# -------------------------------------------------------------------------------------------------- judge
def judge_samples(
    samples: list[dict[str, Any]],
    backend: Any,
    cache: JudgeCache,
    *,
    language: str,
    rubric: Rubric | None = None,
    price_in_per_mtok: float = 0.0,
    price_out_per_mtok: float = 0.0,
    progress: bool = True,
) -> dict[str, Any]:
    """Judge every sample ({prompt, answer, reference}); reuse cached judgements. Returns mean scores.

    If the endpoint dies, raises JudgeUnavailable after its retries; judgements completed so far stay in
    the cache and a rerun continues from there."""
    rubric = rubric or Rubric.load()
    tokens_in = tokens_out = 0
    new = cached = 0
    verdicts: list[dict[str, Any]] = []
    bar = log_progress(samples, desc=f"judge ({backend.id})", unit="answer", enabled=progress)
    for sample in bar:
        key = cache_key(backend.id, rubric, sample["prompt"], sample["answer"], sample.get("reference"))
        entry = cache.entries.get(key)
        if entry is None:
            messages = rubric.messages(sample["prompt"], sample["answer"], sample.get("reference"), language)
            try:
                completion = backend.complete(messages)
            except JudgeUnavailable as exc:
                raise JudgeUnavailable(
                    f"{exc}\n    {len(cache.entries)} completed judgement(s) are kept in {cache.path}; "
                    "rerun the same command when the endpoint is back to judge only what is missing"
                ) from None
            entry = {
                "key": key,
                "id": sample.get("id"),
                "judge": backend.id,
                "rubric": rubric.id,
                "reply": completion.text,
                "scores": rubric.parse(completion.text),
                "prompt_tokens": completion.prompt_tokens,
                "completion_tokens": completion.completion_tokens,
            }
            cache.add(entry)
            new += 1
            tokens_in += completion.prompt_tokens
            tokens_out += completion.completion_tokens
            cost = (tokens_in * price_in_per_mtok + tokens_out * price_out_per_mtok) / 1e6
            bar.set_postfix(tokens=f"{tokens_in}+{tokens_out}", cost=f"${cost:.4f}")
        else:
            cached += 1
        verdicts.append(entry)
    means: dict[str, float | None] = {}
    for axis in rubric.axes:
        values = [v["scores"][axis] for v in verdicts if axis in v["scores"]]
        means[axis] = sum(values) / len(values) if values else None
    scored = [m for m in means.values() if m is not None]
    items = [{"id": v.get("id"), "scores": v["scores"]} for v in verdicts]
    return {
        "scores": means,
        "mean": sum(scored) / len(scored) if scored else None,
        "intervals": judge_intervals(items, rubric.axes),
        "items": items,
        "answers": len(verdicts),
        "unparsed": sum(1 for v in verdicts if not v["scores"]),
        "new_judgements": new,
        "cached_judgements": cached,
        "tokens": {"prompt": tokens_in, "completion": tokens_out},
        "cost_usd": (tokens_in * price_in_per_mtok + tokens_out * price_out_per_mtok) / 1e6,
        "method": {
            "judge": backend.id,
            "rubric": rubric.id,
            "axes": rubric.axes,
            "scale": [rubric.data["scale"]["min"], rubric.data["scale"]["max"]],
            "cache": str(cache.path),
        },
    }


def judge_stats(items: list[dict[str, Any]], axes: list[str]) -> list[list[int]]:
    """Per answer and axis: score (0 when missing) and present (0/1); summed, they give the means."""
    return [[c for a in axes for c in (v["scores"].get(a, 0), int(a in v["scores"]))] for v in items]


def judge_axis_means(s: Any) -> Any:
    import numpy as np

    with np.errstate(invalid="ignore", divide="ignore"):
        return s[:, 0::2] / s[:, 1::2]


def judge_overall(s: Any) -> Any:
    """The headline judge score of summed ``judge_stats``: the mean of the axes that have a score."""
    import numpy as np

    means = judge_axis_means(s)
    finite = np.isfinite(means)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(finite, means, 0).sum(axis=1) / finite.sum(axis=1)


def judge_intervals(items: list[dict[str, Any]], axes: list[str]) -> dict[str, Any]:
    """Bootstrap over prompts (answers): per-axis means and their mean, each resample recomputed from
    the resampled answers' scores (an answer missing an axis counts for the others)."""
    from ltk.evaluate import uncertainty as u

    stats = judge_stats(items, axes)

    def rec(ci: Any, n: int) -> dict[str, Any]:
        return u.record(ci, method="bootstrap percentile", unit="prompts", n=n)

    return {
        "mean": rec(u.bootstrap_interval(stats, judge_overall), len(items)),
        "scores": {
            a: rec(
                u.bootstrap_interval(stats, lambda s, k=k: judge_axis_means(s)[:, k]),
                sum(a in v["scores"] for v in items),
            )
            for k, a in enumerate(axes)
        },
    }


def make_backend(
    url: str | None,
    model: str | None,
    *,
    api_key_env: str = "OPENAI_API_KEY",
    max_retries: int = 4,
    backoff: float = 1.0,
    timeout: float = 120.0,
) -> Any:
    """An HTTP judge when ``url`` is given, else a local transformers judge model (``model``)."""
    if not model:
        raise UsageError("the judge needs a model: --judge-model NAME (with --judge-url for an endpoint)")
    if url:
        if not url.startswith(("http://", "https://")):
            raise UsageError(f"--judge-url {url!r} must start with http:// or https://")
        return HttpJudge(url, model, api_key_env, timeout=timeout, max_retries=max_retries, backoff=backoff)
    from ltk.evaluate.loading import load_model

    loaded = load_model(model)
    return LocalJudge(loaded.model, loaded.tokenizer, loaded.name)
