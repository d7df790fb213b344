"""``ltk quickstart``: the whole job on the embedded default, offline, in about 12 minutes on 2 CPU cores.

    embedded SmolLM2-135M  ->  ltk build-langpack ny  ->  evaluate the base  ->  ltk train (CPT -> SFT,
    short budgets)  ->  evaluate after each stage  ->  ltk report  ->  headline numbers

The quickstart calls the same library functions as the commands it stands for; nothing here trains or
evaluates by itself. The only thing it adds is a budget: it writes ``<out>/<code>-quickstart.yml``, the
langpack's recipe with short step counts and a small evaluation, so a user can rerun or edit exactly what
ran (``ltk train runs/quickstart/ny-quickstart.yml``).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from ltk.errors import LtkError, UsageError
from ltk.evaluate.metrics import EvalOptions
from ltk.io import atomic_write_json, atomic_write_text
from ltk.layout import BuildLayout, RunLayout
from ltk.validation import override

log = logging.getLogger(__name__)

QUICKSTART_LANGPACK = "ny"
EVAL_METRICS = ("bpb", "codeswitch", "chrf")


@dataclass(frozen=True)
class Budget:
    """How much the quickstart trains and evaluates. Sized so the full run fits 15 minutes on 2 cores
    (measured: SmolLM2-135M trains at ~190 tokens/s and scores ~600 tokens/s there)."""

    cpt_steps: int
    sft_steps: int
    sequence_len: int
    cpt_micro_batch: int
    sft_micro_batch: int
    cpt_learning_rate: float
    sft_learning_rate: float
    eval_docs: int  # held-out documents (Bible chapters) per language for bits per byte
    eval_prompts: int  # held-out prompts for the code-switch rate
    eval_pairs: int  # parallel pairs per direction for chrF
    max_new_tokens: int
    # bits-per-byte window: 2048 scores a whole held-out chapter in one forward pass (cheapest, most context)
    eval_context: int


FULL = Budget(
    cpt_steps=30,  # 30 x 4 x 512 = 61k tokens
    sft_steps=24,
    sequence_len=512,
    cpt_micro_batch=4,
    sft_micro_batch=4,
    cpt_learning_rate=4e-4,
    sft_learning_rate=2e-4,
    eval_docs=4,
    eval_prompts=8,
    eval_pairs=8,
    max_new_tokens=48,
    eval_context=2048,
)
# What CI runs end to end: a handful of steps, a few minutes, the same code path.
FAST = Budget(
    cpt_steps=6,
    sft_steps=3,
    sequence_len=256,
    cpt_micro_batch=4,
    sft_micro_batch=2,
    cpt_learning_rate=1e-3,
    sft_learning_rate=2e-4,
    eval_docs=2,  # two chapters: the fewest a bootstrap interval can be drawn from
    eval_prompts=2,
    eval_pairs=2,
    max_new_tokens=16,
    eval_context=2048,
)


def budget_for(*, fast: bool, max_steps: int | None = None) -> Budget:
    budget = FAST if fast else FULL
    if max_steps is not None:
        if max_steps < 1:
            raise UsageError(f"--max-steps must be 1 or more (got {max_steps})")
        budget = replace(budget, cpt_steps=max_steps, sft_steps=max(1, max_steps // 2))
    return budget


class Progress:
    """``[k/n] step`` lines with elapsed time, so a user always sees where the quickstart is."""

    def __init__(self, total: int):
        self.total, self.k = total, 0
        self.start = time.monotonic()
        self.times: dict[str, float] = {}
        self._last: tuple[str, float] | None = None

    def step(self, title: str) -> None:
        self._close()
        self.k += 1
        log.info(f"\n[{self.k}/{self.total}] {title}  (elapsed {self.elapsed()})")
        self._last = (title, time.monotonic())

    def _close(self) -> None:
        if self._last:
            self.times[self._last[0]] = round(time.monotonic() - self._last[1], 1)
            self._last = None

    def elapsed(self) -> str:
        s = int(time.monotonic() - self.start)
        return f"{s // 60}:{s % 60:02d}"

    def done(self) -> dict[str, float]:
        self._close()
        return self.times


def quickstart_recipe(recipe_file: Path, out: Path, budget: Budget) -> Any:
    """The langpack's rendered recipe with the quickstart's short budgets and ``out`` as run folder."""
    from ltk.recipe.load import load_recipe

    stage_budgets = {
        "cpt": (budget.cpt_steps, budget.cpt_learning_rate, budget.cpt_micro_batch),
        "sft": (budget.sft_steps, budget.sft_learning_rate, budget.sft_micro_batch),
    }
    values: dict[str, Any] = {
        "output_dir": str(out),
        "sequence_len": budget.sequence_len,
        "max_steps": budget.cpt_steps,
        "micro_batch_size": budget.cpt_micro_batch,
        "gradient_accumulation_steps": 1,
        "logging_steps": 1,
        "save_steps": max(budget.cpt_steps, budget.sft_steps),
        "save_total_limit": 1,
        # Evaluation is run by the quickstart itself, on each stage's saved model, with the budget's limits.
        "ltk.eval.enabled": False,
    }
    for stage, (steps, learning_rate, micro_batch) in stage_budgets.items():
        values.update(
            {
                f"ltk.stages.{stage}.max_steps": steps,
                f"ltk.stages.{stage}.learning_rate": learning_rate,
                f"ltk.stages.{stage}.micro_batch_size": micro_batch,
                f"ltk.stages.{stage}.gradient_accumulation_steps": 1,
                f"ltk.stages.{stage}.sequence_len": budget.sequence_len,
                f"ltk.stages.{stage}.warmup_ratio": 0.1,
            }
        )
    return override(load_recipe(recipe_file), values, source=f"quickstart budget over {recipe_file}")


def write_quickstart_recipe(recipe: Any, path: Path, source: Path) -> Path:
    """Write the quickstart's recipe; refuse to reuse a run folder that holds a different one."""
    from ltk.recipe.render import recipe_to_yaml

    header = (
        f"# ltk quickstart recipe: {source} with the quickstart's short budgets (written by ltk quickstart).\n"
        f"# Rerun it:  ltk train {path}\n"
    )
    text = recipe_to_yaml(recipe, header)
    if path.is_file() and path.read_text(encoding="utf-8") != text:
        raise UsageError(
            f"{path.parent} holds a quickstart run with other settings ({path} differs), and its models would "
            f"be reused.\n    fix: pass another --out, or delete {path.parent} to start over"
        )
    return atomic_write_text(path, text)


def model_stamp(folder: Path) -> str:
    """sha256 of the file that records a model folder's weights hashes (ltk's stage or asset manifest)."""
    import hashlib

    for name in ("ltk_stage.json", "ltk-manifest.json", "config.json"):
        if (folder / name).is_file():
            return hashlib.sha256((folder / name).read_bytes()).hexdigest()
    return str(folder)


def eval_options(limits: Any) -> EvalOptions:
    """The evaluation a budget (quickstart) or scale (experiment) asks for: its ``eval_*`` fields."""
    return EvalOptions(
        max_docs=limits.eval_docs,
        max_prompts=limits.eval_prompts,
        max_pairs=limits.eval_pairs,
        context_length=limits.eval_context,
        max_new_tokens=limits.max_new_tokens,
        batch_size=8,
    )


def evaluate_once(
    model: str, build_dir: Path, out: Path, stage: str, limits: Any, *, tag: str, settings: dict[str, Any]
) -> dict[str, Any]:
    """Evaluate one model into out/eval/<stage>.json, unless a finished evaluation of the same model with
    the same settings is there already (a rerun after a crash keeps it). ``limits`` carries the eval_*
    budget fields; ``tag`` names who asked (quickstart, experiment) in the result's meta."""
    from ltk.evaluate.run import EVAL_FORMAT, evaluate_model

    stamp = {**json.loads(json.dumps(settings)), "model_fingerprint": model_stamp(Path(model))}
    cached = RunLayout(out).eval_file(stage)
    if cached.is_file():
        data = json.loads(cached.read_text(encoding="utf-8"))
        # An evaluation from before intervals (an older format) is redone: it has no per-item scores.
        if data.get("meta", {}).get(tag) == stamp and data["meta"].get("format") == EVAL_FORMAT:
            return data
    return evaluate_model(
        model, build_dir, out, list(EVAL_METRICS), eval_options(limits), stage=stage, extra_meta={tag: stamp}
    )


def evaluate_stage(model: str, build_dir: Path, out: Path, stage: str, budget: Budget) -> dict[str, Any]:
    """bits per byte (both languages), code-switch rate and chrF of one model, written to out/eval/."""
    return evaluate_once(
        model, build_dir, out, stage, budget, tag="quickstart", settings={"budget": asdict(budget)}
    )


HEADLINE_PATHS: dict[str, tuple[str, ...]] = {
    "target_bpb": ("bpb", "target", "bits_per_byte"),
    "english_bpb": ("bpb", "english", "bits_per_byte"),
    "codeswitch_answers": ("codeswitch", "answer_rate"),
    "chrf_to_target": ("chrf", "to_target", "chrf"),
}


def headline(out: Path) -> dict[str, Any]:
    """The numbers a user looks at first, per stage: bits per byte in both languages, code-switch, chrF,
    each with its 95% interval (``<key>_ci``) when the eval file has one."""
    from ltk.evaluate.report import interval_of

    rows: dict[str, Any] = {}
    for stage in ("base", "cpt", "sft"):
        file = out / "eval" / f"{stage}.json"
        if not file.is_file():
            continue
        met = json.loads(file.read_text(encoding="utf-8"))["metrics"]
        row: dict[str, Any] = {}
        if "bpb" in met:
            row["target_bpb"] = met["bpb"]["target"]["bits_per_byte"]
            row["english_bpb"] = met["bpb"]["english"]["bits_per_byte"]
        if "codeswitch" in met:
            row["codeswitch_answers"] = met["codeswitch"].get("answer_rate")
            row["codeswitch_words"] = met["codeswitch"].get("word_rate")
        if "chrf" in met:
            row["chrf_to_target"] = met["chrf"]["to_target"]["chrf"]
            row["chrf_to_english"] = met["chrf"]["to_english"]["chrf"]
        for key, path in HEADLINE_PATHS.items():
            found = interval_of(met, path) if row.get(key) is not None else None
            row[f"{key}_ci"] = found.get("ci") if found else None
        rows[stage] = row
    return rows


def render_headline(rows: dict[str, Any], language: str, code: str = "tgt") -> str:
    """The headline table; brackets hold 95% intervals (small eval sets give wide ones: read them)."""

    def cell(r: dict[str, Any], key: str, spec: str, scale: float = 1.0) -> str:
        value = r.get(key)
        if value is None:
            return "n/a"
        unit = "%" if scale == 100 else ""
        text = spec.format(value * scale) + unit
        ci = r.get(f"{key}_ci")
        if ci:
            text += f" [{spec.format(ci[0] * scale)}, {spec.format(ci[1] * scale)}]"
        return text

    columns = (
        (language + " bits/byte", "target_bpb", "{:.4f}", 1.0),
        ("English bits/byte", "english_bpb", "{:.4f}", 1.0),
        ("code-switch (answers)", "codeswitch_answers", "{:.0f}", 100.0),
        ("chrF en->" + code, "chrf_to_target", "{:.1f}", 1.0),
    )
    table = [["stage", *(c[0] for c in columns)]]
    table += [
        [stage, *(cell(r, key, spec, scale) for _, key, spec, scale in columns)] for stage, r in rows.items()
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    lines = [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in table
    ]
    if any(r.get(f"{k}_ci") for r in rows.values() for k in HEADLINE_PATHS):
        lines.append("[brackets]: 95% intervals (bootstrap over documents / verses, Wilson over answers)")
    return "\n".join(lines)


def build_for(pack: Any, build_root: Path, recipes_dir: Path, *, seed: int, base_model: str) -> Path:
    """``ltk build-langpack CODE`` (``ltk.pipeline``), logging each stage's summary; returns the recipe."""
    from ltk.pipeline import BuildOptions, build_langpack

    result = build_langpack(pack, build_root, recipes_dir, BuildOptions(seed=seed, base_model=base_model))
    for text in result.summaries:
        log.info(text)
    if result.recipe is None:
        raise LtkError(f"building {pack.code} wrote no recipe")
    return result.recipe


def run_quickstart(
    out: Path = Path("runs/quickstart"),
    *,
    fast: bool = False,
    max_steps: int | None = None,
    seed: int = 0,
    build_root: Path = Path("build"),
    recipes_dir: Path = Path("recipes"),
    base_model: str | None = None,
    code: str = QUICKSTART_LANGPACK,
) -> dict[str, Any]:
    """Run the whole quickstart; returns a summary (paths, headline numbers, seconds per step).

    Every step resumes: a finished corpus, recipe, stage model or evaluation is reused on a rerun.
    """
    from ltk.assets import EMBEDDED_NAME, resolve_model
    from ltk.evaluate.report import write_report
    from ltk.registry import get_langpack

    out, build_root, recipes_dir = Path(out), Path(build_root), Path(recipes_dir)
    budget = budget_for(fast=fast, max_steps=max_steps)
    base_model = base_model or EMBEDDED_NAME
    progress = Progress(6)
    pack = get_langpack(code)
    language = pack.spec.language.name
    log.info(
        f"ltk quickstart: adapt {base_model} to {language} ({pack.spec.language.flores}) "
        f"{'(fast: a handful of steps)' if fast or max_steps else ''}\n"
        f"  run folder {out}, build folder {build_root / pack.code}, "
        f"CPT {budget.cpt_steps} steps x {budget.cpt_micro_batch} x {budget.sequence_len} tokens, "
        f"SFT {budget.sft_steps} steps"
    )

    progress.step("base model")
    base_path = resolve_model(base_model)
    log.info(f"  {base_model} -> {base_path}")

    progress.step(f"ltk build-langpack {pack.code}  (corpus, parallel sets, instruction tiers, recipe)")
    recipe_file = build_for(pack, build_root, recipes_dir, seed=seed, base_model=base_model)
    build_dir = BuildLayout(build_root, pack.code).dir
    recipe = quickstart_recipe(recipe_file, out, budget)
    qs_recipe = write_quickstart_recipe(recipe, out / f"{pack.code}-quickstart.yml", recipe_file)
    log.info(f"  recipe {recipe_file}; quickstart budgets in {qs_recipe}")

    progress.step("evaluate the base model (bits per byte, code-switch rate, chrF)")
    evaluate_stage(base_path, build_dir, out, "base", budget)

    progress.step(f"ltk train {qs_recipe}  (continual pretraining, then SFT)")
    stage_models = train(qs_recipe)

    progress.step("evaluate after each stage")
    for stage in ("cpt", "sft"):
        if stage in stage_models:
            evaluate_stage(str(stage_models[stage]), build_dir, out, stage, budget)

    progress.step("ltk report")
    written = write_report([out], out / "report")
    seconds = progress.done()
    summary = {
        "langpack": pack.code,
        "language": language,
        "base_model": base_model,
        "recipe": str(qs_recipe),
        "run": str(out),
        "report": {k: str(v) for k, v in written.items() if not k.startswith("plot:")},
        "headline": headline(out),
        "budget": asdict(budget),
        "seconds": seconds,
        "total_seconds": round(sum(seconds.values()), 1),
    }
    atomic_write_json(out / "quickstart.json", summary)
    summary["elapsed"] = progress.elapsed()
    return summary


def render_result(summary: dict[str, Any]) -> str:
    """What the quickstart prints at the end: the headline table, the verdict, where the report is."""
    rows, language = summary["headline"], summary["language"]
    lines = [render_headline(rows, language, summary["langpack"])]
    if "base" in rows and len(rows) > 1:
        last = list(rows)[-1]
        before, after = rows["base"].get("target_bpb"), rows[last].get("target_bpb")
        if before is not None and after is not None:
            verdict = "lower (better)" if after < before else "NOT lower: train longer (drop --fast)"
            lines.append(f"\n{language} bits per byte {before:.4f} -> {after:.4f} after {last}: {verdict}")
    report = summary["report"]
    lines.append(f"\nreport: {report['html']}  (markdown: {report['markdown']})")
    run = summary.get("run")
    if run:  # what to do with the result next
        lines.append(f"talk to it:  ltk chat {run} --compare {summary['base_model']}")
        lines.append(f"ship it:     ltk export {run} --out {run}-ollama --format ollama")
    lines.append(f"done in {summary.get('elapsed', '?')}")
    return "\n".join(lines)


def train(recipe_file: Path) -> dict[str, Path]:
    """What ``ltk train RECIPE`` does; returns each stage's final model folder."""
    from ltk.train.run import train_recipe

    # resume: a rerun after a crash continues from checkpoints and skips finished stages.
    result = train_recipe(recipe_file, resume=True)
    models = {stage: Path(result[stage]) for stage in ("cpt", "sft") if stage in result}
    if not models:
        raise LtkError(f"training {recipe_file} returned no stage model (got {sorted(result)})")
    return models
