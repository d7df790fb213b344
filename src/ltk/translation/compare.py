"""``ltk translate --compare``: measure MT engines on a langpack's parallel evaluation set before choosing
one (FLORES devtest for most packs, the held-out Bible verses for ``ny``).

Each engine translates the same pairs both ways (English -> target, target -> English) through the shared
batching loop, into a fresh cache so its speed is real. Reported per engine: chrF and BLEU per direction
(sacrebleu, corpus level), segments/s and useful (output) tokens/s, and the estimated time to translate each
tier of the langpack on this machine (records x segments per record, plus the quality round trip). An engine
that cannot translate the language gets a row saying why; the rest are still measured.
"""

from __future__ import annotations

import logging
import platform
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ltk.errors import LtkError, UsageError
from ltk.translation.families import FAMILIES, NAMES

log = logging.getLogger(__name__)
ENGLISH = "eng_Latn"
# Sentences per English instruction record when none are measured (alpaca-style: instruction, input and
# an answer of a few sentences).
DEFAULT_SEGMENTS_PER_RECORD = 6.0


@dataclass(frozen=True)
class EngineSpec:
    """One engine to compare: a family and a model (or a template / served name)."""

    family: str
    model: str | None

    @property
    def label(self) -> str:
        return f"{self.family}:{self.model}" if self.model else self.family


def parse_spec(text: str) -> EngineSpec:
    """``FAMILY``, ``FAMILY=MODEL`` or ``MODEL`` (the family read from the model's tokenizer/config)."""
    family, sep, model = text.partition("=")
    if sep:
        if family not in FAMILIES:
            raise UsageError(
                f"--compare {text!r}: unknown engine {family!r}; use one of: {', '.join(FAMILIES)}"
            )
        return EngineSpec(family, model or None)
    if text in FAMILIES:
        return EngineSpec(text, None)
    return EngineSpec(detect_family(text), text)


def detect_family(model: str) -> str:
    """The family of a local or hub seq2seq model, from its config and its tokenizer's language tokens."""
    from ltk.translation.engines import language_codes, load_tokenizer_and_config

    if "{src}" in model or "{tgt}" in model:
        return "marian"
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(model)
    except Exception as exc:
        raise UsageError(
            f"--compare {model!r}: not an engine name ({', '.join(FAMILIES)}) and no model could be read there "
            f"({type(exc).__name__})\n    fix: FAMILY=MODEL, e.g. m2m100=./m2m100_418M"
        ) from None
    if getattr(config, "model_type", "") == "marian":
        return "marian"
    tokenizer, _ = load_tokenizer_and_config(model, None, False, "marian")  # marian: no token check
    for family in ("nllb", "m2m100", "madlad"):
        if language_codes(tokenizer, family):
            return family
    raise UsageError(
        f"--compare {model!r}: cannot tell which engine family it is (no NLLB, M2M-100 or MADLAD language "
        "tokens)\n    fix: name it: FAMILY=MODEL"
    )


def read_eval_pairs(pack: Any, build_root: Path, limit: int | None) -> tuple[str, list[dict[str, str]]]:
    """(set name, pairs) of the langpack's first evaluation parallel set, built if missing."""
    import pyarrow.parquet as pq

    from ltk.corpus.parallel import build_parallel_sets
    from ltk.layout import BuildLayout

    names = list(pack.spec.eval.parallel)
    if not names:
        raise UsageError(
            f"langpack {pack.code} names no parallel evaluation set ({pack.file}: eval.parallel)"
            "\n    fix: add one (FLORES+ devtest for most languages) to parallel: and eval.parallel"
        )
    layout = BuildLayout(Path(build_root), pack.code)
    path = layout.parallel_set(names[0])
    if not path.exists():
        build_parallel_sets(pack, layout.root, names=[names[0]])
    if not path.exists():
        raise LtkError(f"parallel set {names[0]!r} was not written to {path}")
    rows = pq.read_table(path, columns=["id", "target", "english"]).to_pylist()
    rows = [r for r in rows if r["target"] and r["english"]]
    return names[0], rows[:limit] if limit else rows


def measure_engine(
    engine: Any, pairs: list[dict[str, str]], tgt: str, cache_dir: Path, progress: bool
) -> dict[str, Any]:
    """Both directions through the shared batching loop (fresh cache): scores and speeds."""
    import sacrebleu

    from ltk.translation.batching import translate_segments
    from ltk.translation.cache import TranslationCache

    out: dict[str, Any] = {}
    cache = TranslationCache(cache_dir)
    try:
        for direction, src, dst, sources, refs in (
            ("en->xx", ENGLISH, tgt, [p["english"] for p in pairs], [p["target"] for p in pairs]),
            ("xx->en", tgt, ENGLISH, [p["target"] for p in pairs], [p["english"] for p in pairs]),
        ):
            started = time.perf_counter()
            result = translate_segments(
                engine, sources, src, dst, cache=cache, progress=progress, desc=direction
            )
            seconds = time.perf_counter() - started
            hyps = [result.text[s] for s in sources]
            stats = result.stats
            out[direction] = {
                "chrf": round(sacrebleu.corpus_chrf(hyps, [refs]).score, 2),
                "bleu": round(sacrebleu.corpus_bleu(hyps, [refs]).score, 2),
                "segments": stats.distinct,
                "seconds": round(seconds, 3),
                "segments_per_s": round(stats.translated / seconds, 3) if seconds else None,
                "output_tokens_per_s": round(stats.output_tokens / seconds, 1) if seconds else None,
            }
    finally:
        cache.close()
    return out


def tier_estimates(
    tiers: list[int], forward_rate: float | None, back_rate: float | None, segments_per_record: float,
    roundtrip_sample: float,
) -> dict[str, float | None]:  # fmt: skip
    """Seconds to translate each tier: its records' segments forward, plus the sampled round trip."""
    if not forward_rate or not back_rate:
        return {str(t): None for t in tiers}
    return {
        str(t): round(
            t * segments_per_record / forward_rate + t * segments_per_record * roundtrip_sample / back_rate, 1
        )
        for t in tiers
    }


def compare_engines(
    pack: Any,
    specs: list[EngineSpec],
    out_dir: Path,
    *,
    build_root: Path,
    limit: int | None = 200,
    device: str | None = None,
    dtype: str = "auto",
    backend: str = "auto",
    endpoint: str | None = None,
    segments_per_record: float = DEFAULT_SEGMENTS_PER_RECORD,
    progress: bool = True,
) -> dict[str, Any]:
    """Measure every engine in ``specs`` on the pack's evaluation pairs; write compare.{json,md,png}."""
    from ltk.hardware import cpu_has_native_bf16
    from ltk.io import atomic_write_json, atomic_write_text, check_writable, library_versions
    from ltk.langpack.schema import DEFAULT_ENGINE_MODELS
    from ltk.translation.engines import GenerationSettings, load_engine

    if not specs:
        raise UsageError("--compare needs at least one engine or model")
    out_dir = Path(out_dir)
    check_writable(out_dir)
    tgt = pack.spec.language.flores
    set_name, pairs = read_eval_pairs(pack, build_root, limit)
    if not pairs:
        raise UsageError(f"the evaluation set {set_name!r} of {pack.code} has no pairs")
    rows: list[dict[str, Any]] = []
    for spec in specs:
        model = spec.model or (
            pack.spec.instructions.model if spec.family == pack.spec.instructions.engine else None
        )
        model = model or DEFAULT_ENGINE_MODELS.get(spec.family, "")
        row: dict[str, Any] = {"engine": spec.family, "name": NAMES[spec.family], "model": model}
        log.info(f"compare: {spec.label} on {len(pairs)} pairs of {set_name}, both ways")
        try:
            engine = load_engine(
                model,
                backend if spec.family not in ("llm", "marian") else "auto",
                family=spec.family,
                settings=GenerationSettings(),
                device=device,
                dtype=dtype,
                endpoint=endpoint,
                languages=(ENGLISH, tgt),
            )
        except LtkError as err:  # this engine cannot translate the language (or cannot load): say why
            log.warning(f"compare: {spec.label}: {err}")
            row["error"] = str(err).splitlines()[0]
            rows.append(row)
            continue
        row.update(licence=engine.licence, backend=engine.backend, precision=engine.precision)
        with tempfile.TemporaryDirectory(prefix="ltk-compare-") as tmp:
            row.update(measure_engine(engine, pairs, tgt, Path(tmp), progress))
        row["tier_seconds"] = tier_estimates(
            list(pack.spec.instructions.tiers),
            row["en->xx"]["segments_per_s"],
            row["xx->en"]["segments_per_s"],
            segments_per_record,
            pack.spec.instructions.quality.roundtrip_sample,
        )
        rows.append(row)
        del engine
    if all("error" in r for r in rows):
        raise UsageError(
            f"no engine could translate {tgt}:\n" + "\n".join(f"  {r['engine']}: {r['error']}" for r in rows)
        )
    result = {
        "langpack": pack.code,
        "language": tgt,
        "eval_set": set_name,
        "pairs": len(pairs),
        "segments_per_record": segments_per_record,
        "roundtrip_sample": pack.spec.instructions.quality.roundtrip_sample,
        "tiers": list(pack.spec.instructions.tiers),
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "native_bf16": cpu_has_native_bf16(),
            "device": device or "auto",
        },
        "engines": rows,
        "versions": library_versions("ltk", "transformers", "torch", "sacrebleu", "ctranslate2", python=True),
    }
    table = render_table(result)
    atomic_write_json(out_dir / "compare.json", result)
    atomic_write_text(out_dir / "compare.md", table + "\n")
    _plot(result, out_dir / "compare.png")
    result["table"] = table
    return result


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def render_table(result: dict[str, Any]) -> str:
    tiers = result["tiers"]
    header = [
        "engine", "model", "chrF en->xx", "BLEU en->xx", "chrF xx->en", "BLEU xx->en", "seg/s en->xx",
        "seg/s xx->en", "tok/s en->xx", *[f"tier {t:,}" for t in tiers], "licence",
    ]  # fmt: skip
    lines = [
        f"{len(result['engines'])} engine(s) on {result['pairs']} pairs of {result['eval_set']} "
        f"({result['langpack']}, {result['language']}), both ways; tier times assume "
        f"{result['segments_per_record']:g} segments per record plus a {result['roundtrip_sample']:.0%} round trip.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for row in result["engines"]:
        if "error" in row:
            cells = [row["engine"], row["model"], f"not available: {row['error']}"]
            cells += [""] * (len(header) - len(cells))
        else:
            fwd, back = row["en->xx"], row["xx->en"]
            cells = [
                row["engine"], row["model"], f"{fwd['chrf']:.1f}", f"{fwd['bleu']:.1f}", f"{back['chrf']:.1f}",
                f"{back['bleu']:.1f}", f"{fwd['segments_per_s']}", f"{back['segments_per_s']}",
                f"{fwd['output_tokens_per_s']}", *[_duration(row["tier_seconds"][str(t)]) for t in tiers],
                row["licence"],
            ]  # fmt: skip
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)


def _plot(result: dict[str, Any], path: Path) -> None:
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ltk.io import atomic_write_bytes

    ok = [r for r in result["engines"] if "error" not in r]
    labels = [r["engine"] for r in ok]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    width = 0.35
    xs = range(len(ok))
    axes[0].bar([x - width / 2 for x in xs], [r["en->xx"]["chrf"] for r in ok], width, label="en -> xx")
    axes[0].bar([x + width / 2 for x in xs], [r["xx->en"]["chrf"] for r in ok], width, label="xx -> en")
    axes[0].set_xticks(list(xs), labels)
    axes[0].set_ylabel("chrF")
    axes[0].set_title(f"quality on {result['eval_set']}")
    axes[0].legend()
    axes[1].bar(list(xs), [r["en->xx"]["segments_per_s"] or 0 for r in ok])
    axes[1].set_xticks(list(xs), labels)
    axes[1].set_ylabel("segments / s (en -> xx)")
    axes[1].set_title("speed on this machine")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
