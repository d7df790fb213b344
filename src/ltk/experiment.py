"""``ltk experiment``: the study's central findings (Zhao et al. 2024), measured by ltk on the embedded default.

Arms, all from the same base model, seed and build, with equal token budgets for the pretraining arms
(same steps x micro-batch x sequence length, every packed row full):

    base              the embedded SmolLM2-135M-Instruct, untouched
    cpt-en0           continual pretraining on Chichewa only (English ratio 0)
    cpt-en25          continual pretraining with English mixed in at 25% of tokens (ltk's default)
    cpt-en25-vocab+   the same, with the vocabulary extended by Chichewa pieces (same trained parameters: LoRA + whole embeddings)
    sft-<N>           SFT of cpt-en25 on nested instruction tiers of N examples (one epoch each)

Every model is scored with ``ltk.evaluate``: bits per byte on held-out Chichewa and English books, the
code-switch rate of its answers to held-out Chichewa prompts, and chrF of its translations of held-out
verses. Training is ``ltk train`` (``ltk.train.run.train_recipe``) on recipes derived from the langpack's
rendered recipe, written next to the runs so that each arm can be rerun by hand.

Outputs: ``<out>/results.json``, ``<out>/results.md`` (the table, with the study's numbers beside it and
automatic verdicts) and ``<out>/findings.png``. Runs resume: a finished arm (model + evaluation) is reused.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ltk.errors import LtkError, UsageError
from ltk.io import atomic_target, atomic_write_json, atomic_write_text, staged_dir
from ltk.validation import override

log = logging.getLogger(__name__)

EXPERIMENT_LANGPACK = "ny"

# The study's numbers (Zhao et al. 2024, "LLaMA Beyond English"), for the table.
STUDY = {
    "english_ppl_base": 14.69,
    "english_ppl_target_only": 198.84,
    "codeswitch_range": (0.02, 0.05),
    "tiers": (1_000, 65_000, 950_000),
    "pretraining_tokens": 500_000_000,
}


@dataclass(frozen=True)
class Scale:
    """How big the experiment is. ``full`` took 66 minutes on the 2-core CPU (limit: 90; LoRA CPT runs at
    ~140 tokens/s there); ``small`` is a ~20-minute version; ``tiny`` checks the plumbing only."""

    name: str
    cpt_steps: int
    sequence_len: int
    cpt_micro_batch: int
    cpt_learning_rate: float
    tiers: tuple[int, ...]
    sft_micro_batch: int
    sft_learning_rate: float
    extend_size: int
    vocab_documents: int
    eval_docs: int
    eval_prompts: int
    eval_pairs: int
    max_new_tokens: int
    eval_context: int

    @property
    def cpt_tokens(self) -> int:
        return self.cpt_steps * self.cpt_micro_batch * self.sequence_len


SCALES = {
    "full": Scale("full", 60, 512, 4, 4e-4, (64, 256, 1024), 8, 2e-4, 2000, 5000, 6, 16, 16, 64, 2048),
    "small": Scale("small", 12, 256, 4, 4e-4, (8, 32, 128), 8, 2e-4, 1000, 2000, 2, 4, 4, 24, 2048),
    "tiny": Scale("tiny", 2, 128, 2, 4e-4, (4, 8), 4, 2e-4, 200, 200, 1, 1, 1, 8, 2048),
}


@dataclass(frozen=True)
class Arm:
    name: str
    kind: str  # base | cpt | sft
    english_ratio: float | None = None
    vocabulary: str = "keep"
    tier: int | None = None


def arms_for(scale: Scale) -> list[Arm]:
    return [
        Arm("base", "base"),
        Arm("cpt-en0", "cpt", english_ratio=0.0),
        Arm("cpt-en25", "cpt", english_ratio=0.25),
        Arm("cpt-en25-vocab+", "cpt", english_ratio=0.25, vocabulary="extend"),
        *(Arm(f"sft-{n}", "sft", english_ratio=0.25, tier=n) for n in scale.tiers),
    ]


# ------------------------------------------------------------------------------------------------ data
def target_only_corpus(build_dir: Path, dest: Path) -> Path:
    """The built (mixed) training corpus without its English rows: the study's target-only ablation."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    if (dest / "part-00000.parquet").is_file():
        return dest
    files = sorted((build_dir / "corpus" / "train").glob("*.parquet"))
    if not files:
        raise UsageError(
            f"no training corpus in {build_dir / 'corpus' / 'train'}; run `ltk build-langpack ny`"
        )
    table = pq.read_table(files[0]) if len(files) == 1 else _concat([pq.read_table(f) for f in files])
    table = table.filter(pc.equal(table["lang"], "target"))
    with staged_dir(dest) as tmp:
        pq.write_table(table, tmp / "part-00000.parquet")
    return dest


def _concat(tables: list[Any]) -> Any:
    import pyarrow as pa

    return pa.concat_tables(tables)


def nested_tiers(build_dir: Path, sizes: tuple[int, ...], dest: Path) -> dict[int, Path]:
    """Nested tiers of the given sizes: prefixes of the smallest built tier that holds the largest size
    (built tiers are themselves nested, so every prefix is a subset of every larger built tier)."""
    built = sorted(
        (int(p.name.split("-", 1)[1]), p / "train.jsonl")
        for p in (build_dir / "instructions").glob("tier-*")
        if (p / "train.jsonl").is_file()
    )
    source = next((path for size, path in built if size >= max(sizes)), None)
    if source is None:
        raise UsageError(
            f"no instruction tier in {build_dir / 'instructions'} holds {max(sizes)} examples "
            f"(built: {[s for s, _ in built]}); run `ltk build-langpack ny --max-tier all` or choose a "
            "smaller --scale"
        )
    lines = [line for line in source.read_text(encoding="utf-8").splitlines() if line.strip()]
    out = {}
    for size in sizes:
        path = dest / f"tier-{size}" / "train.jsonl"
        text = "\n".join(lines[:size]) + "\n"
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            atomic_write_text(path, text)
        out[size] = path
    return out


# --------------------------------------------------------------------------------------------- recipes
def arm_recipe(base: Any, arm: Arm, scale: Scale, run_dir: Path, data: dict[str, Any]) -> Any:
    """The langpack's recipe, changed only where the arm differs (and shortened to the scale)."""
    values: dict[str, Any] = {
        "output_dir": str(run_dir),
        "sequence_len": scale.sequence_len,
        "max_steps": scale.cpt_steps,
        "micro_batch_size": scale.cpt_micro_batch,
        "gradient_accumulation_steps": 1,
        "logging_steps": 1,
        "save_steps": 10_000,
        "save_total_limit": 1,
        "ltk.english.ratio": arm.english_ratio or 0.0,
        "ltk.english.premixed": True,
        "ltk.vocabulary.policy": arm.vocabulary,
        "ltk.vocabulary.extend_size": scale.extend_size,
        "ltk.vocabulary.training_documents": scale.vocab_documents,
        "ltk.eval.enabled": False,  # scored below, with the scale's limits
    }
    for stage in ("cpt", "sft"):
        values.update(
            {
                f"ltk.stages.{stage}.sequence_len": scale.sequence_len,
                f"ltk.stages.{stage}.gradient_accumulation_steps": 1,
                f"ltk.stages.{stage}.warmup_ratio": 0.1,
                f"ltk.stages.{stage}.enabled": arm.kind == stage,
            }
        )
    values.update(
        {
            "ltk.stages.cpt.max_steps": scale.cpt_steps,
            "ltk.stages.cpt.learning_rate": scale.cpt_learning_rate,
            "ltk.stages.cpt.micro_batch_size": scale.cpt_micro_batch,
            "ltk.stages.cpt.data": str(data["corpus_en0"] if arm.english_ratio == 0 else data["corpus_en25"]),
            "ltk.stages.sft.learning_rate": scale.sft_learning_rate,
            "ltk.stages.sft.micro_batch_size": scale.sft_micro_batch,
            "ltk.stages.sft.num_epochs": 1.0,
            "ltk.stages.sft.max_steps": None,
            "ltk.stages.sft.start_from": "base",  # the base of an SFT arm is cpt-en25's final model (below)
            # No warmup: the smallest tier is a handful of steps, and a warmup step at lr 0 would make
            # the smallest arm an untrained copy of cpt-en25.
            "ltk.stages.sft.warmup_ratio": 0.0,
        }
    )
    if arm.tier is not None:
        values.update({"ltk.stages.sft.tier": arm.tier, "ltk.stages.sft.data": str(data["tiers"][arm.tier])})
    if arm.kind == "sft":
        values["base_model"] = str(data["sft_start"])
    return override(base, values, source=f"experiment arm {arm.name}")


def write_arm_recipe(recipe: Any, path: Path, arm: Arm, scale: Scale) -> Path:
    from ltk.recipe.render import recipe_to_yaml

    header = (
        f"# ltk experiment, arm {arm.name!r}, scale {scale.name!r} (written by ltk experiment).\n"
        f"# Rerun it:  ltk train {path} --stage {arm.kind}\n"
    )
    return atomic_write_text(path, recipe_to_yaml(recipe, header))


# ------------------------------------------------------------------------------------------ evaluation
def _plain(value: Any) -> Any:
    """As it reads back from JSON (tuples become lists), so stored stamps compare equal."""
    return json.loads(json.dumps(value))


def evaluate_arm(model: Path, build_dir: Path, run_dir: Path, stage: str, scale: Scale) -> dict[str, Any]:
    from ltk.quickstart import evaluate_once

    return evaluate_once(
        str(model), build_dir, run_dir, stage, scale, tag="experiment", settings={"scale": asdict(scale)}
    )


def row_from_eval(arm: Arm, ev: dict[str, Any], train: dict[str, Any] | None) -> dict[str, Any]:
    met = ev["metrics"]
    cs = met.get("codeswitch", {})
    row = {
        "arm": arm.name,
        "kind": arm.kind,
        "english_ratio": arm.english_ratio,
        "vocabulary": arm.vocabulary,
        "tier": arm.tier,
        "target_bpb": met["bpb"]["target"]["bits_per_byte"],
        "english_bpb": met["bpb"]["english"]["bits_per_byte"],
        "target_ppl": met["bpb"]["target"]["token_perplexity"],
        "english_ppl": met["bpb"]["english"]["token_perplexity"],
        "codeswitch_answers": cs.get("answer_rate"),
        "codeswitch_words": cs.get("word_rate"),
        "chrf_to_target": met["chrf"]["to_target"]["chrf"],
        "chrf_to_english": met["chrf"]["to_english"]["chrf"],
    }
    if train:
        row["train_tokens"] = train.get("train_tokens")
        row["train_seconds"] = train.get("train_seconds")
        row["train_loss"] = train.get("train_loss")
    return row


def _train_info(model: Path, arm: Arm, scale: Scale) -> dict[str, Any]:
    record = json.loads((model / "ltk_stage.json").read_text(encoding="utf-8"))
    return {
        "train_seconds": record.get("train_seconds"),
        "train_loss": record.get("train_loss"),
        "train_tokens": scale.cpt_tokens if arm.kind == "cpt" else None,
    }


def _cached_row(arm: Arm, run_dir: Path, scale: Scale) -> dict[str, Any] | None:
    file = run_dir / "eval" / f"{arm.kind}.json"
    if not file.is_file():
        return None
    ev = json.loads(file.read_text(encoding="utf-8"))
    if ev.get("meta", {}).get("experiment", {}).get("scale") != _plain(asdict(scale)):
        return None
    final = run_dir / arm.kind / "final"
    info = _train_info(final, arm, scale) if (final / "ltk_stage.json").is_file() else None
    return row_from_eval(arm, ev, info)


def _run_arm(
    arm: Arm,
    sc: Scale,
    run_dir: Path,
    work: Path,
    base_path: Path,
    base_recipe: Any,
    build_dir: Path,
    data: dict[str, Any],
) -> dict[str, Any]:
    """Train one arm with ``ltk train`` (unless it is the base) and score it; returns its table row."""
    from ltk.train.run import train_recipe

    train_info: dict[str, Any] | None = None
    if arm.kind == "base":
        model = base_path
    else:
        recipe = arm_recipe(base_recipe, arm, sc, run_dir, data)
        path = write_arm_recipe(recipe, work / "recipes" / f"{arm.name}.yml", arm, sc)
        result = train_recipe(path, stage=arm.kind, resume=True)
        model = Path(result[arm.kind])
        train_info = _train_info(model, arm, sc)
    ev = evaluate_arm(model, build_dir, run_dir, arm.kind, sc)
    return row_from_eval(arm, ev, train_info)


# --------------------------------------------------------------------------------------------- findings
def findings(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The study's claims checked against the measured rows: each with the numbers and a verdict."""
    by = {r["arm"]: r for r in rows}
    out: list[dict[str, Any]] = []
    base = by.get("base")
    en0, en25, vocab = by.get("cpt-en0"), by.get("cpt-en25"), by.get("cpt-en25-vocab+")
    if base and en0 and en25:
        out.append(
            {
                "claim": "continual pretraining lowers target bits per byte, with or without English mixing",
                "measured": f"base {base['target_bpb']:.4f} -> en0 {en0['target_bpb']:.4f}, "
                f"en25 {en25['target_bpb']:.4f}",
                "holds": en0["target_bpb"] < base["target_bpb"] and en25["target_bpb"] < base["target_bpb"],
            }
        )
        rise0 = en0["english_bpb"] - base["english_bpb"]
        rise25 = en25["english_bpb"] - base["english_bpb"]
        out.append(
            {
                "claim": "without English mixing English degrades clearly; with 25% English it stays near the base "
                "(study: English perplexity 14.69 -> 198.84 target-only)",
                "measured": f"English bpb base {base['english_bpb']:.4f}, en0 {en0['english_bpb']:.4f} "
                f"({rise0:+.4f}), en25 {en25['english_bpb']:.4f} ({rise25:+.4f}); English token ppl "
                f"{base['english_ppl']:.2f} -> en0 {en0['english_ppl']:.2f}, en25 {en25['english_ppl']:.2f}",
                "holds": rise0 > 0 and rise0 > 2 * max(rise25, 0.0),
            }
        )
    if en25 and vocab:
        out.append(
            {
                "claim": "at a small budget, extending the vocabulary does not beat keeping it (target bpb)",
                "measured": f"keep {en25['target_bpb']:.4f} vs extend {vocab['target_bpb']:.4f}",
                "holds": vocab["target_bpb"] >= en25["target_bpb"],
            }
        )
    tiers = sorted((r for r in rows if r["kind"] == "sft"), key=lambda r: r["tier"])
    if len(tiers) >= 2:
        chrfs = [r["chrf_to_target"] for r in tiers]
        out.append(
            {
                "claim": "more instruction data gives better answers (chrF en->target rises with tier size)",
                "measured": ", ".join(f"{r['tier']}: {r['chrf_to_target']:.2f}" for r in tiers),
                "holds": all(b >= a for a, b in zip(chrfs, chrfs[1:], strict=False)) and chrfs[-1] > chrfs[0],
            }
        )
    rates = [(r["arm"], r["codeswitch_answers"]) for r in rows if r["codeswitch_answers"] is not None]
    if rates:
        lo, hi = STUDY["codeswitch_range"]
        out.append(
            {
                "claim": f"adapted models code-switch in {100 * lo:.0f}-{100 * hi:.0f}% of answers (the study)",
                "measured": ", ".join(f"{a} {100 * v:.0f}%" for a, v in rates),
                "holds": None,  # reported, not judged: our prompts and model size differ from the study's
            }
        )
    return out


# ------------------------------------------------------------------------------------------ rendering
def _f(v: Any, spec: str = "{:.4f}") -> str:
    return "–" if v is None else spec.format(v)


def render_markdown(result: dict[str, Any]) -> str:
    scale = result["scale"]
    rows = result["rows"]
    lines = [
        "# ltk experiment: the study's findings on the embedded default",
        "",
        f"Measured {result['date']} on {result['machine']} in {result['total_seconds'] / 60:.0f} min, "
        f"scale **{scale['name']}**, seed {result['seed']}. Base model {result['base_model']}, "
        f"langpack `{result['langpack']}`.",
        f"Pretraining arms: {scale['cpt_steps']} steps x {scale['cpt_micro_batch']} x {scale['sequence_len']} "
        f"= {scale['cpt_steps'] * scale['cpt_micro_batch'] * scale['sequence_len']:,} tokens each "
        f"(the study: {STUDY['pretraining_tokens']:,}). SFT tiers {list(scale['tiers'])} examples, one epoch "
        f"each, from cpt-en25 (the study: {', '.join(f'{t:,}' for t in STUDY['tiers'])}).",
        f"Evaluation: {scale['eval_docs']} held-out books' chapters per language (bits per byte, context "
        f"{scale['eval_context']}), {scale['eval_prompts']} held-out prompts (code-switch, greedy, "
        f"{scale['max_new_tokens']} new tokens), {scale['eval_pairs']} held-out verse pairs per direction (chrF).",
        "",
        "| arm | English mix | vocabulary | tier | target bpb | English bpb | English token ppl | "
        "chrF en→tgt | chrF tgt→en | code-switch (answers) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['arm']} | {_f(r['english_ratio'], '{:.2f}')} | {r['vocabulary']} | {_f(r['tier'], '{}')} | "
            f"{_f(r['target_bpb'])} | {_f(r['english_bpb'])} | {_f(r['english_ppl'], '{:.2f}')} | "
            f"{_f(r['chrf_to_target'], '{:.2f}')} | {_f(r['chrf_to_english'], '{:.2f}')} | "
            f"{_f(r['codeswitch_answers'], '{:.0%}')} |"
        )
    for arm, err in result.get("failed", {}).items():
        lines.append(f"| {arm} | failed: {err} | | | | | | | | |")
    lines += ["", "## The study's claims, checked", "", "| claim | measured | holds here |", "|---|---|---|"]
    for f in result["findings"]:
        verdict = {True: "yes", False: "**no**", None: "reported"}[f["holds"]]
        lines.append(f"| {f['claim']} | {f['measured']} | {verdict} |")
    lines += [
        "",
        "Study numbers (Zhao et al. 2024, LLaMA-7B, ~0.5B Chinese tokens): English perplexity 14.69 -> 198.84 "
        "after target-only pretraining; 2-5% of answers code-switch; instruction tiers 1k / 65k / 950k.",
        f"Reproduce: `ltk experiment --scale {scale['name']} --seed {result['seed']}`.",
        "",
        "![findings](findings.png)",
        "",
    ]
    return "\n".join(lines)


def plot(result: dict[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["rows"]
    pre = [r for r in rows if r["kind"] in ("base", "cpt")]
    sft = sorted((r for r in rows if r["kind"] == "sft"), key=lambda r: r["tier"])
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    names = [r["arm"] for r in pre]
    x = range(len(pre))
    axes[0].bar([i - 0.2 for i in x], [r["target_bpb"] for r in pre], 0.4, label="Chichewa (target)")
    axes[0].bar([i + 0.2 for i in x], [r["english_bpb"] for r in pre], 0.4, label="English")
    axes[0].set_xticks(list(x), names, rotation=20)
    axes[0].set_ylabel("bits per byte (lower is better)")
    axes[0].set_title("Continual pretraining, equal token budgets")
    axes[0].legend()
    if sft:
        tiers = [r["tier"] for r in sft]
        axes[1].plot(tiers, [r["chrf_to_target"] for r in sft], "o-", label="en -> target")
        axes[1].plot(tiers, [r["chrf_to_english"] for r in sft], "s-", label="target -> en")
        axes[1].set_xscale("log")
        axes[1].set_xlabel("SFT tier (examples, nested)")
        axes[1].set_ylabel("chrF on held-out verses")
        axes[1].set_title("Instruction tiers")
        axes[1].legend()
    cs = [(r["arm"], r["codeswitch_answers"]) for r in rows if r["codeswitch_answers"] is not None]
    axes[2].bar(range(len(cs)), [100 * v for _, v in cs])
    axes[2].axhspan(
        100 * STUDY["codeswitch_range"][0], 100 * STUDY["codeswitch_range"][1], alpha=0.2, color="g"
    )
    axes[2].set_xticks(range(len(cs)), [a for a, _ in cs], rotation=30)
    axes[2].set_ylabel("% of answers that code-switch")
    axes[2].set_title("Code-switching (band: the study's 2-5%)")
    fig.suptitle(f"ltk experiment, scale {result['scale']['name']} (seed {result['seed']})")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_target(path) as tmp:
        fig.savefig(tmp, dpi=110, format=path.suffix.lstrip("."))
    plt.close(fig)
    return path


# ------------------------------------------------------------------------------------------------ runner
def run_experiment(
    out: Path = Path("docs/experiment"),
    *,
    scale: str = "full",
    seed: int = 0,
    work: Path = Path("runs/experiment"),
    build_root: Path = Path("build"),
    recipes_dir: Path = Path("recipes"),
    base_model: str | None = None,
    only: list[str] | None = None,
) -> dict[str, Any]:
    """Run every arm (or ``only`` those named), score each model, and write the table, JSON and plot."""
    import platform
    from datetime import date

    from ltk.assets import EMBEDDED_NAME
    from ltk.quickstart import build_for
    from ltk.recipe.load import load_recipe
    from ltk.registry import get_langpack

    if scale not in SCALES:
        raise UsageError(f"unknown --scale {scale!r}; choose from {', '.join(SCALES)}")
    sc = SCALES[scale]
    out, work, build_root = Path(out), Path(work) / sc.name, Path(build_root)
    base_model = base_model or EMBEDDED_NAME
    arms = arms_for(sc)
    if only:
        unknown = sorted(set(only) - {a.name for a in arms})
        if unknown:
            raise UsageError(f"unknown arm(s) {unknown}; arms: {', '.join(a.name for a in arms)}")
    started = time.monotonic()
    pack = get_langpack(EXPERIMENT_LANGPACK)
    log.info(f"ltk experiment: scale {sc.name}, seed {seed}, {len(arms)} arms, work folder {work}")

    from ltk.assets import resolve_model

    base_path = Path(resolve_model(base_model))
    log.info("[setup] ltk build-langpack ny")
    recipe_file = build_for(pack, build_root, Path(recipes_dir), seed=seed, base_model=base_model)
    build_dir = build_root / pack.code
    base_recipe = override(load_recipe(recipe_file), {"seed": seed}, source="ltk experiment --seed")
    data: dict[str, Any] = {
        "corpus_en25": build_dir / "corpus" / "train",
        "corpus_en0": target_only_corpus(build_dir, work / "data" / "corpus-en0"),
        "tiers": nested_tiers(build_dir, sc.tiers, work / "data" / "instructions"),
        "sft_start": work / "runs" / "cpt-en25" / "cpt" / "final",
    }
    rows: list[dict[str, Any]] = []
    failed: dict[str, str] = {}
    for i, arm in enumerate(arms, 1):
        run_dir = work / "runs" / arm.name
        if only and arm.name not in only:
            # Not asked for: reuse an earlier measurement of this arm at this scale, if there is one.
            cached = _cached_row(arm, run_dir, sc)
            if cached:
                rows.append(cached)
            continue
        log.info(f"\n[{i}/{len(arms)}] {arm.name}  (elapsed {(time.monotonic() - started) / 60:.1f} min)")
        if arm.kind == "sft" and not (data["sft_start"] / "ltk_stage.json").is_file():
            failed[arm.name] = "starts from cpt-en25, which has no model yet (run it: --only cpt-en25)"
            log.info(f"  {arm.name}: skipped: {failed[arm.name]}")
            continue
        try:
            rows.append(_run_arm(arm, sc, run_dir, work, base_path, base_recipe, build_dir, data))
        except Exception as exc:  # one failed arm must not lose the others' measurements
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            log.info(f"  {arm.name}: FAILED: {type(exc).__name__}: {first}")
            failed[arm.name] = f"{type(exc).__name__}: {first}"
            continue
        r = rows[-1]
        log.info(
            f"  {arm.name}: target bpb {r['target_bpb']:.4f}, English bpb {r['english_bpb']:.4f}, "
            f"chrF en->tgt {r['chrf_to_target']:.2f}, code-switch {_f(r['codeswitch_answers'], '{:.0%}')}"
        )
    if not rows:
        raise LtkError("no arm ran")
    result = {
        "date": date.today().isoformat(),
        "machine": f"{os.cpu_count()}-core CPU ({platform.machine()}), no GPU",
        "scale": asdict(sc),
        "seed": seed,
        "base_model": base_model,
        "langpack": pack.code,
        "rows": rows,
        "findings": findings(rows),
        "failed": failed,
        "study": STUDY,
        "total_seconds": round(time.monotonic() - started, 1),
    }
    out.mkdir(parents=True, exist_ok=True)
    suffix = "" if sc.name == "full" else f"-{sc.name}"
    json_path, md_path = out / f"results{suffix}.json", out / f"results{suffix}.md"
    png = plot(result, out / f"findings{suffix}.png")
    text = render_markdown(result).replace("(findings.png)", f"({png.name})")
    atomic_write_json(json_path, result)
    atomic_write_text(md_path, text)
    log.info(f"written: {md_path}, {json_path}, {png}")
    result["markdown"] = text
    return result
