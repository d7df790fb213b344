"""``ltk experiment``: the study's central findings (Zhao et al. 2024), measured by ltk on the embedded default.

Arms, all from the same base model, seed and build, with equal token budgets for the pretraining arms
(same steps x micro-batch x sequence length, every packed row full):

    base              the embedded SmolLM2-135M-Instruct, untouched
    cpt-en0           continual pretraining on Chichewa only (English ratio 0)
    cpt-en25          continual pretraining with English mixed in at 25% of tokens (ltk's default)
    cpt-en25-vocab+   the same, with the vocabulary extended by Chichewa pieces (same trained parameters: LoRA + whole embeddings)
    sft-<N>           SFT of cpt-en25 on nested instruction tiers of N examples (one epoch each)
    sft+pref          the largest sft arm (or ``--pref-tier N``'s) plus stage 3: DPO on preference pairs
                      ltk builds against code-switching (not in the default run: ``--only sft+pref`` or
                      ``--with-pref``)

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
    """How big the experiment is. ``full``, measured arm by arm on an idle 2-core AMD EPYC (avx2, fp32):
    each pretraining arm trains for ~23 min (LoRA CPT at ~90 tokens/s), sft-1024 for ~27 min, and every
    evaluation below takes ~12 min, so all seven arms take about 3 h and ``--with-pref`` adds ~35 min
    (66 min with the earlier 6-chapter, 16-prompt, 16-pair evaluation). ``small`` is a ~25-minute
    version; ``tiny`` checks the plumbing only.

    Evaluation sizes (issue 19) are chosen so the headline comparisons can be decided at 95%: every
    held-out chapter of the ny build (24 per language) for bits per byte; 64 verse pairs per direction,
    so a paired chrF difference is known to about +-2 points (1.96 x a per-verse paired sd of ~8 / sqrt(64)),
    finer than the tier effects worth reporting; all 50 held-out prompts of the build, so a code-switch
    rate is known to at most +-14 points (Wilson, worst case): enough to tell 40% from 10%, not 2% from 5%
    (that takes several hundred prompts).
    """

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
    "full": Scale("full", 60, 512, 4, 4e-4, (64, 256, 1024), 8, 2e-4, 2000, 5000, 24, 50, 64, 64, 2048),
    "small": Scale("small", 12, 256, 4, 4e-4, (8, 32, 128), 8, 2e-4, 1000, 2000, 4, 16, 16, 24, 2048),
    "tiny": Scale("tiny", 2, 128, 2, 4e-4, (4, 8), 4, 2e-4, 200, 200, 1, 1, 1, 8, 2048),
}


# The preference stage's settings per scale (kept out of Scale, whose fields stamp every cached arm).
# Sized like the SFT arms: prompts of the largest tier (half ask for Chichewa answers), 4 samples each at
# the evaluation's answer length; DPO twice over the pairs with a LoRA step size fit for a short run.
PREF_SETTINGS: dict[str, dict[str, Any]] = {
    "full": {"max_prompts": 128, "samples_per_prompt": 4, "max_new_tokens": 64, "learning_rate": 5e-5},
    "small": {"max_prompts": 32, "samples_per_prompt": 4, "max_new_tokens": 24, "learning_rate": 5e-5},
    "tiny": {"max_prompts": 4, "samples_per_prompt": 2, "max_new_tokens": 8, "learning_rate": 5e-5},
}
PREF_ARM = "sft+pref"
NOT_MEASURED = "not measured"
# The study's claims as the table words them (a claim not measured yet keeps its wording).
CLAIM_PRETRAINING = "continual pretraining lowers target bits per byte, with or without English mixing"
CLAIM_ENGLISH = (
    "without English mixing English degrades; mixing 25% English back in protects it "
    "(study: English perplexity 14.69 -> 198.84 target-only)"
)
CLAIM_VOCABULARY = "at a small budget, extending the vocabulary hurts target bits per byte (vs keeping it)"
CLAIM_TIERS = "more instruction data gives better translations"


@dataclass(frozen=True)
class Arm:
    name: str
    kind: str  # base | cpt | sft | pref
    english_ratio: float | None = None
    vocabulary: str = "keep"
    tier: int | None = None
    optional: bool = False  # run only when asked (--only NAME or --with-pref); else reused if measured


def arms_for(scale: Scale, *, with_optional: bool = False, pref_tier: int | None = None) -> list[Arm]:
    """The experiment's arms at ``scale``; ``pref_tier`` picks the SFT arm stage 3 starts from (default:
    the largest tier, the model the study's 2-5% claim is checked on)."""
    if pref_tier is not None and pref_tier not in scale.tiers:
        raise UsageError(
            f"--pref-tier {pref_tier}: scale {scale.name} has SFT tiers {', '.join(map(str, scale.tiers))}; "
            "stage 3 starts from one of them"
        )
    arms = [
        Arm("base", "base"),
        Arm("cpt-en0", "cpt", english_ratio=0.0),
        Arm("cpt-en25", "cpt", english_ratio=0.25),
        Arm("cpt-en25-vocab+", "cpt", english_ratio=0.25, vocabulary="extend"),
        *(Arm(f"sft-{n}", "sft", english_ratio=0.25, tier=n) for n in scale.tiers),
        Arm(PREF_ARM, "pref", english_ratio=0.25, tier=pref_tier or max(scale.tiers), optional=True),
    ]
    return [a for a in arms if with_optional or not a.optional]


def arm_run_dir(seed_work: Path, arm: Arm) -> Path:
    """The pref arm shares its SFT arm's run folder: stage 3 starts from <run>/sft/final, reused as is."""
    name = f"sft-{arm.tier}" if arm.kind == "pref" else arm.name
    return seed_work / "runs" / name


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
    for stage in ("cpt", "sft", "pref"):
        values.update(
            {
                f"ltk.stages.{stage}.sequence_len": scale.sequence_len,
                f"ltk.stages.{stage}.gradient_accumulation_steps": 1,
                f"ltk.stages.{stage}.warmup_ratio": 0.1,
                f"ltk.stages.{stage}.enabled": arm.kind == stage,
            }
        )
    pref = PREF_SETTINGS[scale.name]
    values.update(
        {
            f"ltk.stages.pref.{key}": pref[key]
            for key in ("max_prompts", "samples_per_prompt", "max_new_tokens", "learning_rate")
        }
    )
    values.update(
        {
            "ltk.stages.pref.micro_batch_size": 4,
            "ltk.stages.pref.num_epochs": 2.0,
            "ltk.stages.pref.max_steps": None,
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
    if arm.kind in ("sft", "pref"):
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


def _arm_settings(arm: Arm, scale: Scale) -> dict[str, Any]:
    """What an arm's evaluation is stamped with (a cached one is reused only when it matches)."""
    settings: dict[str, Any] = {"scale": asdict(scale)}
    if arm.kind == "pref":
        settings["pref"] = PREF_SETTINGS[scale.name]
    return _plain(settings)


def evaluate_arm(
    model: Path, build_dir: Path, run_dir: Path, stage: str, scale: Scale, arm: Arm | None = None
) -> dict[str, Any]:
    from ltk.quickstart import evaluate_once

    settings = _arm_settings(arm, scale) if arm else {"scale": asdict(scale)}
    return evaluate_once(str(model), build_dir, run_dir, stage, scale, tag="experiment", settings=settings)


# Row key -> where the number is in an eval JSON's metrics.
ROW_PATHS: dict[str, tuple[str, ...]] = {
    "target_bpb": ("bpb", "target", "bits_per_byte"),
    "english_bpb": ("bpb", "english", "bits_per_byte"),
    "codeswitch_answers": ("codeswitch", "answer_rate"),
    "chrf_to_target": ("chrf", "to_target", "chrf"),
    "chrf_to_english": ("chrf", "to_english", "chrf"),
}


def _has(met: dict[str, Any], path: tuple[str, ...]) -> bool:
    node: Any = met
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return False
        node = node[key]
    return node is not None


def interval_of(met: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any] | None:
    from ltk.evaluate.report import interval_of as find

    return find(met, path)


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
    # 95% intervals of the row's numbers (None for an eval file without them).
    for key, path in ROW_PATHS.items():
        found = interval_of(met, path) if _has(met, path) else None
        row[f"{key}_ci"] = found.get("ci") if found else None
    row["eval_seconds"] = round(sum(ev.get("seconds", {}).values()), 1) or None
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


def _cached_row(arm: Arm, run_dir: Path, scale: Scale) -> tuple[dict[str, Any], dict[str, Any]] | None:
    file = run_dir / "eval" / f"{arm.kind}.json"
    if not file.is_file():
        return None
    ev = json.loads(file.read_text(encoding="utf-8"))
    stamp = ev.get("meta", {}).get("experiment", {})
    if stamp.get("scale") != _plain(asdict(scale)) or stamp.get("pref") != _arm_settings(arm, scale).get(
        "pref"
    ):
        return None
    final = run_dir / arm.kind / "final"
    info = _train_info(final, arm, scale) if (final / "ltk_stage.json").is_file() else None
    return row_from_eval(arm, ev, info), ev["metrics"]


def _run_arm(
    arm: Arm,
    sc: Scale,
    run_dir: Path,
    work: Path,
    base_path: Path,
    base_recipe: Any,
    build_dir: Path,
    data: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Train one arm with ``ltk train`` (unless it is the base) and score it; returns its table row and
    its eval metrics (with the per-item scores the verdicts compare)."""
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
    ev = evaluate_arm(model, build_dir, run_dir, arm.kind, sc, arm)
    return row_from_eval(arm, ev, train_info), ev["metrics"]


# --------------------------------------------------------------------------------------------- findings
def _diff_text(d: dict[str, Any] | None, spec: str = "{:+.4f}", scale: float = 1.0) -> str:
    if d is None:
        return "no per-item scores"
    text = spec.format(d["difference"] * scale)
    if d.get("ci"):
        text += f" [{spec.format(d['ci'][0] * scale)}, {spec.format(d['ci'][1] * scale)}]"
    return text


def _claim(
    claim: str, measured: str, parts: list[tuple[str, tuple[str, str]]], diffs: list[dict[str, Any] | None]
) -> dict[str, Any]:
    """One claim: its parts' verdicts combined, with every part's reason."""
    from ltk.evaluate.compare import combine

    verdict = combine([v for _, (v, _) in parts])
    return {
        "claim": claim,
        "measured": measured,
        "verdict": verdict,
        "reason": "; ".join(f"{name}: {v}, {why}" for name, (v, why) in parts),
        "holds": {"holds": True, "contradicted": False}.get(verdict),
        "differences": [dict(d) for d in diffs if d is not None],
    }


def _not_measured(
    claim: str, arms: list[str], by: dict[str, Any], *, needs: str | None = None
) -> dict[str, Any]:
    """A claim the measured arms cannot read yet, naming what is missing and how to run it."""
    missing = [a for a in arms if a not in by]
    needs = needs or "arm(s) " + ", ".join(missing)
    run = " ".join(f"--only {a}" for a in missing)
    return {
        "claim": claim,
        "measured": f"needs {needs}" + (f": run `ltk experiment {run}` at this scale" if run else ""),
        "verdict": NOT_MEASURED,
        "reason": "not measured yet",
        "holds": None,
        "differences": [],
    }


def findings(
    rows: list[dict[str, Any]], evals: dict[str, dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """The study's claims checked against the measured arms at 95%: each claim *holds* when the paired
    differences (same documents, verses, prompts) exclude no effect in the claimed direction, is
    *contradicted* when they exclude it in the other direction, and is *inconclusive* otherwise.
    ``evals`` maps arm -> eval metrics with per-item scores; without them every claim is inconclusive."""
    from ltk.evaluate.compare import compare, proportion_verdict, verdict

    evals = evals or {}
    by = {r["arm"]: r for r in rows}
    out: list[dict[str, Any]] = []

    def diff(a: str, b: str, key: str) -> dict[str, Any] | None:
        if a not in evals or b not in evals:
            return None
        return compare(evals[a], evals[b], key)

    base = by.get("base")
    en0, en25, vocab = by.get("cpt-en0"), by.get("cpt-en25"), by.get("cpt-en25-vocab+")
    # A resumable experiment is often read half-done: each claim is read from the arms it needs, and a
    # claim whose arms are missing says which ones (instead of silently vanishing from the table).
    pretrained = [(label, r) for label, r in (("en0", en0), ("en25", en25)) if r]
    if base and pretrained:
        ds = [diff("base", r["arm"], "bpb.target") for _, r in pretrained]
        out.append(
            _claim(
                CLAIM_PRETRAINING,
                f"base {base['target_bpb']:.4f} -> "
                + ", ".join(
                    f"{label} {r['target_bpb']:.4f} ({_diff_text(d)})"
                    for (label, r), d in zip(pretrained, ds, strict=True)
                ),
                [
                    (f"{label} - base", verdict(d, "decrease"))
                    for (label, _), d in zip(pretrained, ds, strict=True)
                ],
                ds,
            )
        )
    else:
        out.append(_not_measured(CLAIM_PRETRAINING, ["base", "cpt-en25"], by))
    if base and en0 and en25:
        r0 = diff("base", "cpt-en0", "bpb.english")
        r25 = diff("base", "cpt-en25", "bpb.english")
        mix = diff("cpt-en25", "cpt-en0", "bpb.english")
        out.append(
            _claim(
                CLAIM_ENGLISH,
                f"English bpb base {base['english_bpb']:.4f}, en0 {en0['english_bpb']:.4f} ({_diff_text(r0)}), "
                f"en25 {en25['english_bpb']:.4f} ({_diff_text(r25)}); en0 - en25 {_diff_text(mix)}; English "
                f"token ppl {base['english_ppl']:.2f} -> en0 {en0['english_ppl']:.2f}, en25 {en25['english_ppl']:.2f}",
                [("en0 - base", verdict(r0, "increase")), ("en0 - en25", verdict(mix, "increase"))],
                [r0, r25, mix],
            )
        )
    else:
        out.append(_not_measured(CLAIM_ENGLISH, ["base", "cpt-en0", "cpt-en25"], by))
    if en25 and vocab:
        dv = diff("cpt-en25", "cpt-en25-vocab+", "bpb.target")
        out.append(
            _claim(
                CLAIM_VOCABULARY,
                f"keep {en25['target_bpb']:.4f} vs extend {vocab['target_bpb']:.4f} ({_diff_text(dv)})",
                [("extend - keep", verdict(dv, "increase"))],
                [dv],
            )
        )
    else:
        out.append(_not_measured(CLAIM_VOCABULARY, ["cpt-en25", "cpt-en25-vocab+"], by))
    tiers = sorted((r for r in rows if r["kind"] == "sft"), key=lambda r: r["tier"])
    if len(tiers) >= 2:
        small, large = tiers[0], tiers[-1]
        for direction, arrow in (("to_target", "en->target"), ("to_english", "target->en")):
            d = diff(small["arm"], large["arm"], f"chrf.{direction}.chrf")
            out.append(
                _claim(
                    f"{CLAIM_TIERS} (chrF {arrow}, largest vs smallest tier)",
                    ", ".join(f"{r['tier']}: {r[f'chrf_{direction}']:.2f}" for r in tiers)
                    + f" ({large['tier']} - {small['tier']}: {_diff_text(d, '{:+.2f}')})",
                    [(f"{large['tier']} - {small['tier']}", verdict(d, "increase"))],
                    [d],
                )
            )
    else:
        have = ", ".join(r["arm"] for r in tiers) or "none"
        out.append(_not_measured(CLAIM_TIERS, [], by, needs=f"at least two sft-N arms (measured: {have})"))
    pref = by.get(PREF_ARM)
    start = by.get(f"sft-{pref['tier']}") if pref else None
    if pref and start:
        out += pref_findings(start, pref, diff)
    rates = [(r["arm"], r["codeswitch_answers"], r.get("codeswitch_answers_ci")) for r in rows]
    rates = [x for x in rates if x[1] is not None]
    if rates:
        lo, hi = STUDY["codeswitch_range"]
        adapted = tiers[-1] if tiers else None
        part = (
            proportion_verdict(adapted["codeswitch_answers"], adapted.get("codeswitch_answers_ci"), lo, hi)
            if adapted
            else ("inconclusive", "no SFT arm")
        )
        out.append(
            _claim(
                f"instruction-tuned models code-switch in {100 * lo:.0f}-{100 * hi:.0f}% of answers (the study)",
                ", ".join(
                    f"{a} {100 * v:.0f}%" + (f" [{100 * ci[0]:.0f}, {100 * ci[1]:.0f}]" if ci else "")
                    for a, v, ci in rates
                ),
                [(adapted["arm"] if adapted else "sft", part)],
                [],
            )
        )
    return out


def pref_findings(start: dict[str, Any], pref: dict[str, Any], diff: Any) -> list[dict[str, Any]]:
    """Stage 3 against its SFT arm on the same prompts, chapters and verses: does it lower code-switching
    (paired; McNemar decides with few differing answers), and does anything else get clearly worse?"""
    from ltk.evaluate.compare import CONTRADICTED, HOLDS, verdict

    a, b = start["arm"], pref["arm"]
    d = diff(a, b, "codeswitch.answer_rate")
    mc = (d or {}).get("mcnemar")
    out = [
        _claim(
            "preference tuning on ltk's own pairs lowers the code-switch rate (ltk, not the study)",
            f"{a} {_fci(start, 'codeswitch_answers', '{:.0f}', 100)} -> {b} "
            f"{_fci(pref, 'codeswitch_answers', '{:.0f}', 100)} ({_diff_text(d, '{:+.1f}', 100)} points"
            + (f"; answers that switch only before: {mc['only_a']}, only after: {mc['only_b']}" if mc else "")
            + ")",
            [(f"{b} - {a}", verdict(d, "decrease"))],
            [d],
        )
    ]
    parts, diffs, shown = [], [], []
    for key, better, label, spec, scale in (
        ("bpb.target", "decrease", "target bpb", "{:+.4f}", 1.0),
        ("bpb.english", "decrease", "English bpb", "{:+.4f}", 1.0),
        ("chrf.to_target.chrf", "increase", "chrF en->tgt", "{:+.2f}", 1.0),
        ("chrf.to_english.chrf", "increase", "chrF tgt->en", "{:+.2f}", 1.0),
    ):
        dk = diff(a, b, key)
        v, why = verdict(dk, better)
        # "No clear regression" is the claim: only an interval wholly on the worse side contradicts it.
        parts.append(
            (label, (CONTRADICTED, why) if v == CONTRADICTED else (HOLDS, f"no clear regression; {why}"))
        )
        diffs.append(dk)
        shown.append(f"{label} {_diff_text(dk, spec, scale)}")
    out.append(
        _claim(
            "preference tuning makes nothing else clearly worse (bits per byte, chrF; no clear regression at 95%)",
            f"{b} - {a}: " + ", ".join(shown),
            parts,
            diffs,
        )
    )
    return out


def seed_spread(per_seed: dict[int, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Per arm and number: mean, sample standard deviation, min and max across training seeds."""
    import statistics

    out: dict[str, dict[str, Any]] = {}
    arms = list(dict.fromkeys(r["arm"] for rows in per_seed.values() for r in rows))
    for arm in arms:
        out[arm] = {}
        for key in ROW_PATHS:
            values = [
                r[key] for rows in per_seed.values() for r in rows if r["arm"] == arm and r[key] is not None
            ]
            if values:
                out[arm][key] = {
                    "mean": statistics.fmean(values),
                    "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
                    "min": min(values),
                    "max": max(values),
                    "seeds": len(values),
                }
    return out


# ------------------------------------------------------------------------------------------ rendering
def _f(v: Any, spec: str = "{:.4f}") -> str:
    return "–" if v is None else spec.format(v)


def _fci(row: dict[str, Any], key: str, spec: str = "{:.4f}", scale: float = 1.0) -> str:
    value = row.get(key)
    if value is None:
        return "–"
    text = spec.format(value * scale) + ("%" if scale == 100 else "")
    ci = row.get(f"{key}_ci")
    if ci:
        text += f" [{spec.format(ci[0] * scale)}, {spec.format(ci[1] * scale)}]"
    return text


def _spread_cell(v: dict[str, Any] | None, spec: str, scale: float) -> str:
    if not v:
        return "–"
    bare = spec.rstrip("%")

    def f(x: float) -> str:
        return bare.format(x * scale)

    unit = "%" if scale == 100 else ""
    if v["seeds"] == 1:  # e.g. an optional arm measured on the first seed only: there is no spread
        return f"{f(v['mean'])}{unit} (one seed only)"
    return f"{f(v['mean'])}{unit} ± {f(v['sd'])} ({f(v['min'])}-{f(v['max'])}, {v['seeds']} seeds)"


def _time_text(result: dict[str, Any]) -> str:
    """How long the experiment took. Arms resume across sittings, so the sitting's wall time alone can
    understate it: the arms' own training + evaluation time is summed from their records."""
    sitting = f"{result['total_seconds'] / 60:.0f} min"
    recorded = [
        (r.get("train_seconds") or 0) + (r.get("eval_seconds") or 0)
        for r in result["rows"]
        if r.get("eval_seconds") is not None
    ]
    if not recorded or len(recorded) < len(result["rows"]):
        return f"in {sitting}"
    arms = f"{sum(recorded) / 60:.0f} min of training and evaluation over the arms"
    return arms + ("" if result.get("report_only") else f" (this sitting: {sitting})")


def _pref_in_every_seed(result: dict[str, Any]) -> bool:
    """Whether the pref arm was measured for every seed shown (a cached first-seed measurement alone is
    reused without --with-pref, so the reproduce line must not ask for it on every seed)."""
    seeds = [result["rows"], *(ps["rows"] for ps in result.get("per_seed", {}).values())]
    return all(any(r["arm"] == PREF_ARM for r in rows) for rows in seeds)


def render_markdown(result: dict[str, Any]) -> str:
    scale = result["scale"]
    rows = result["rows"]
    lines = [
        "# ltk experiment: the study's findings on the embedded default",
        "",
        f"Measured {result['date']} on {result['machine']}: {_time_text(result)}, "
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
            f"{_fci(r, 'target_bpb')} | {_fci(r, 'english_bpb')} | {_f(r['english_ppl'], '{:.2f}')} | "
            f"{_fci(r, 'chrf_to_target', '{:.2f}')} | {_fci(r, 'chrf_to_english', '{:.2f}')} | "
            f"{_fci(r, 'codeswitch_answers', '{:.0f}', 100)} |"
        )
    for arm, err in result.get("failed", {}).items():
        lines.append(f"| {arm} | failed: {err} | | | | | | | | |")
    for arm in result.get("not_measured", []):
        lines.append(
            f"| {arm} | not measured yet: `ltk experiment --scale {scale['name']} --only {arm}` | | | | | | | | |"
        )
    lines += [
        "",
        "Brackets: 95% intervals (bits per byte: bootstrap over chapters; chrF: bootstrap over verses; "
        "code-switch: Wilson over answers, in %).",
    ]
    spread = result.get("spread")
    if spread and len(result.get("seeds", [])) > 1:
        lines += [
            "",
            f"## Across training seeds {result['seeds']}",
            "",
            "Mean ± standard deviation (min-max) of each arm over the seeds: the spread training randomness "
            "adds, next to the resampling intervals above (which hold one trained model fixed).",
            "",
            "| arm | target bpb | English bpb | chrF en→tgt | chrF tgt→en | code-switch (answers) |",
            "|---|---|---|---|---|---|",
        ]
        for arm, values in spread.items():
            cells = [
                _spread_cell(values.get(k), spec, scale)
                for k, spec, scale in (
                    ("target_bpb", "{:.4f}", 1),
                    ("english_bpb", "{:.4f}", 1),
                    ("chrf_to_target", "{:.2f}", 1),
                    ("chrf_to_english", "{:.2f}", 1),
                    ("codeswitch_answers", "{:.0f}%", 100),
                )
            ]
            lines.append(f"| {arm} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## The study's claims, checked at 95%",
        "",
        "Each claim *holds* when the paired difference (the same chapters, verses or prompts scored for both "
        "arms; paired bootstrap, 1000 resamples) excludes no effect in the claimed direction, is "
        "*contradicted* when it excludes it in the other direction, and is *inconclusive* when its 95% "
        "interval contains 0.",
        "",
        "| claim | measured (difference [95% interval]) | verdict | why |",
        "|---|---|---|---|",
    ]
    for f in result["findings"]:
        verdict = f.get("verdict") or {True: "holds", False: "contradicted", None: "inconclusive"}[f["holds"]]
        shown = f"**{verdict}**" if verdict in ("holds", "contradicted") else verdict
        if f.get("seeds"):
            shown += " (" + ", ".join(f"seed {s}: {v}" for s, v in f["seeds"].items()) + ")"
        lines.append(f"| {f['claim']} | {f['measured']} | {shown} | {f.get('reason', '')} |")
    lines += [
        "",
        "Study numbers (Zhao et al. 2024, LLaMA-7B, ~0.5B Chinese tokens): English perplexity 14.69 -> 198.84 "
        "after target-only pretraining; 2-5% of answers code-switch; instruction tiers 1k / 65k / 950k.",
        f"Reproduce: `ltk experiment --scale {scale['name']} "
        + ("--with-pref " if _pref_in_every_seed(result) else "")
        + (
            f"--pref-tier {result['pref_tier']} "
            if result.get("pref_tier") not in (None, max(scale["tiers"]))
            else ""
        )
        + (
            f"--seeds {','.join(map(str, result['seeds']))}`."
            if len(result.get("seeds", [])) > 1
            else f"--seed {result['seed']}`."
        ),
        "",
        "![findings](findings.png)",
        "",
    ]
    return "\n".join(lines)


def _yerr(rows: list[dict[str, Any]], key: str, scale: float = 1.0) -> list[list[float]]:
    """Error-bar lengths below and above each value from its stored interval ([0, 0] without one)."""
    below, above = [], []
    for r in rows:
        ci = r.get(f"{key}_ci")
        below.append(max(0.0, (r[key] - ci[0]) * scale) if ci else 0.0)
        above.append(max(0.0, (ci[1] - r[key]) * scale) if ci else 0.0)
    return [below, above]


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
    # Error bars: the stored 95% intervals (none for rows without them).
    axes[0].bar(
        [i - 0.2 for i in x], [r["target_bpb"] for r in pre], 0.4, yerr=_yerr(pre, "target_bpb"), capsize=3,
        label="Chichewa (target)",
    )  # fmt: skip
    axes[0].bar(
        [i + 0.2 for i in x], [r["english_bpb"] for r in pre], 0.4, yerr=_yerr(pre, "english_bpb"), capsize=3,
        label="English",
    )  # fmt: skip
    # Other training seeds (--seeds) as black dots over the first seed's bars: the spread at a glance.
    others = [ps["rows"] for ps in result.get("per_seed", {}).values()]

    def seed_dots(ax: Any, xs: dict[str, float], key: str, scale: float = 1.0, **style: Any) -> None:
        pts = [
            (xs[r["arm"]], r[key] * scale)
            for rows in others
            for r in rows
            if r["arm"] in xs and r[key] is not None
        ]
        if pts:
            ax.scatter(*zip(*pts, strict=True), s=14, zorder=3, **{"color": "k", **style})

    seed_dots(axes[0], {n: i - 0.2 for i, n in enumerate(names)}, "target_bpb", label="other seeds")
    seed_dots(axes[0], {n: i + 0.2 for i, n in enumerate(names)}, "english_bpb")
    axes[0].set_xticks(list(x), names, rotation=20, ha="right", rotation_mode="anchor")
    axes[0].set_ylabel("bits per byte (lower is better)")
    axes[0].set_title("Continual pretraining, equal token budgets")
    axes[0].legend()
    if sft:
        tiers = [r["tier"] for r in sft]
        axes[1].errorbar(
            tiers, [r["chrf_to_target"] for r in sft], yerr=_yerr(sft, "chrf_to_target"), fmt="o-", capsize=3,
            label="en -> target",
        )  # fmt: skip
        axes[1].errorbar(
            tiers, [r["chrf_to_english"] for r in sft], yerr=_yerr(sft, "chrf_to_english"), fmt="s-", capsize=3,
            label="target -> en",
        )  # fmt: skip
        tier_at = {r["arm"]: r["tier"] for r in sft}
        seed_dots(axes[1], tier_at, "chrf_to_target", color="C0", marker="x")
        seed_dots(axes[1], tier_at, "chrf_to_english", color="C1", marker="x")
        axes[1].set_xscale("log")
        axes[1].set_xlabel("SFT tier (examples, nested)")
        axes[1].set_ylabel("chrF on held-out verses")
        axes[1].set_title("Instruction tiers")
        axes[1].legend()
    cs_rows = [r for r in rows if r["codeswitch_answers"] is not None]
    cs = [(r["arm"], r["codeswitch_answers"]) for r in cs_rows]
    # Stage 3 on another tier than the largest (--pref-tier) names that tier: the sft+pref bar alone would
    # read as the headline's stage 3, and both plots could come out identical.
    largest = max(result["scale"]["tiers"])
    cs_labels = [
        f"sft-{r['tier']}+pref" if r["arm"] == PREF_ARM and r["tier"] != largest else r["arm"]
        for r in cs_rows
    ]
    axes[2].bar(
        range(len(cs)), [100 * v for _, v in cs], yerr=_yerr(cs_rows, "codeswitch_answers", 100), capsize=3
    )
    axes[2].axhspan(
        100 * STUDY["codeswitch_range"][0], 100 * STUDY["codeswitch_range"][1], alpha=0.2, color="g"
    )
    # Eight arm names side by side overlap unless slanted and anchored at their right end.
    seed_dots(axes[2], {a: i for i, (a, _) in enumerate(cs)}, "codeswitch_answers", 100)
    axes[2].set_xticks(range(len(cs)), cs_labels, rotation=40, ha="right", rotation_mode="anchor")
    axes[2].set_ylabel("% of answers that code-switch")
    axes[2].set_title("Code-switching\n(band: the study's 2-5%; bars: 95% Wilson)")
    title = f"ltk experiment, scale {result['scale']['name']} (seed {result['seed']})"
    if others:
        title = (
            f"ltk experiment, scale {result['scale']['name']}: bars seed {result['seed']}, "
            f"dots/crosses seeds {', '.join(result['per_seed'])}"
        )
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_target(path) as tmp:
        fig.savefig(tmp, dpi=110, format=path.suffix.lstrip("."))
    plt.close(fig)
    return path


# ------------------------------------------------------------------------------------------------ runner
def _run_arms(
    arms: list[Arm],
    sc: Scale,
    seed: int,
    seed_work: Path,
    base_path: Path,
    base_recipe: Any,
    build_dir: Path,
    data: dict[str, Any],
    only: list[str] | None,
    started: float,
    shared: dict[str, tuple[dict[str, Any], dict[str, Any]]],
    with_pref: bool = False,
    report_only: bool = False,
) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]], dict[str, str]]:
    """Every arm of one training seed: (rows, eval metrics by arm, failures by arm). ``shared`` holds
    arms that do not depend on the seed (the untrained base), measured once."""
    rows: list[dict[str, Any]] = []
    evals: dict[str, dict[str, Any]] = {}
    failed: dict[str, str] = {}
    # A report runs no arm, so it needs no recipe (and has none: nothing was built).
    recipe = (
        None
        if report_only
        else override(base_recipe, {"seed": seed}, source=f"ltk experiment --seeds ({seed})")
    )
    data = {**data, "sft_start": seed_work / "runs" / "cpt-en25" / "cpt" / "final"}
    for i, arm in enumerate(arms, 1):
        run_dir = arm_run_dir(seed_work, arm)
        if arm.name in shared:
            row, metrics = shared[arm.name]
            rows.append(row)
            evals[arm.name] = metrics
            continue
        asked = (arm.name in only) if only else (with_pref or not arm.optional)
        if report_only or not asked:
            # Not asked for: reuse an earlier measurement of this arm at this scale, if there is one.
            cached = _cached_row(arm, run_dir, sc)
            if cached:
                rows.append(cached[0])
                evals[arm.name] = cached[1]
            continue
        log.info(
            f"\n[{i}/{len(arms)}] {arm.name}, seed {seed}  (elapsed {(time.monotonic() - started) / 60:.1f} min)"
        )
        if arm.kind == "sft" and not (data["sft_start"] / "ltk_stage.json").is_file():
            failed[arm.name] = "starts from cpt-en25, which has no model yet (run it: --only cpt-en25)"
            log.info(f"  {arm.name}: skipped: {failed[arm.name]}")
            continue
        if arm.kind == "pref" and not (run_dir / "sft" / "final" / "ltk_stage.json").is_file():
            failed[arm.name] = (
                f"starts from sft-{arm.tier}, which has no model yet (run it: --only sft-{arm.tier})"
            )
            log.info(f"  {arm.name}: skipped: {failed[arm.name]}")
            continue
        try:
            row, metrics = _run_arm(arm, sc, run_dir, seed_work, base_path, recipe, build_dir, data)
        except Exception as exc:  # one failed arm must not lose the others' measurements
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            log.info(f"  {arm.name}: FAILED: {type(exc).__name__}: {first}")
            failed[arm.name] = f"{type(exc).__name__}: {first}"
            continue
        rows.append(row)
        evals[arm.name] = metrics
        log.info(
            f"  {arm.name}: target bpb {_fci(row, 'target_bpb')}, English bpb {_fci(row, 'english_bpb')}, "
            f"chrF en->tgt {_fci(row, 'chrf_to_target', '{:.2f}')}, "
            f"code-switch {_fci(row, 'codeswitch_answers', '{:.0f}', 100)}"
        )
    return rows, evals, failed


def run_experiment(
    out: Path = Path("docs/experiment"),
    *,
    scale: str = "full",
    seed: int = 0,
    seeds: list[int] | None = None,
    work: Path = Path("runs/experiment"),
    build_root: Path = Path("build"),
    recipes_dir: Path = Path("recipes"),
    base_model: str | None = None,
    only: list[str] | None = None,
    with_pref: bool = False,
    report_only: bool = False,
    pref_tier: int | None = None,
) -> dict[str, Any]:
    """Run every arm (or ``only`` those named), score each model, and write the table, JSON and plot.

    The ``sft+pref`` arm (stage 3 on the largest SFT arm) runs only when named in ``only`` or with
    ``with_pref``; otherwise an earlier measurement of it at this scale is reused when there is one.

    ``pref_tier`` runs (or reads) the ``sft+pref`` arm on that tier's SFT model instead of the largest
    one; each tier keeps its own stage-3 model and scores (in its sft-N folder), and the outputs get a
    ``-pref<N>`` suffix so they do not replace the headline table.

    ``report_only`` writes the table, JSON and plot from the arms already measured, running nothing.

    ``seeds`` repeats the training arms once per training seed (the build, its held-out sets and the
    base model stay those of the first seed): the table and verdicts are the first seed's, and the
    spread of every number across seeds is reported beside them, with each seed's verdicts."""
    import platform
    from datetime import date

    from ltk.assets import EMBEDDED_NAME, resolve_model
    from ltk.quickstart import build_for
    from ltk.recipe.load import load_recipe
    from ltk.registry import get_langpack

    if scale not in SCALES:
        raise UsageError(f"unknown --scale {scale!r}; choose from {', '.join(SCALES)}")
    seeds = list(dict.fromkeys(seeds)) if seeds else [seed]
    seed = seeds[0]
    sc = SCALES[scale]
    out, work, build_root = Path(out), Path(work) / sc.name, Path(build_root)
    base_model = base_model or EMBEDDED_NAME
    arms = arms_for(sc, with_optional=True, pref_tier=pref_tier)
    if only:
        unknown = sorted(set(only) - {a.name for a in arms})
        if unknown:
            raise UsageError(f"unknown arm(s) {unknown}; arms: {', '.join(a.name for a in arms)}")
    started = time.monotonic()
    pack = get_langpack(EXPERIMENT_LANGPACK)
    log.info(f"ltk experiment: scale {sc.name}, seeds {seeds}, {len(arms)} arms, work folder {work}")

    build_dir = build_root / pack.code
    if report_only:  # read the finished arms only: no build, no model, nothing trained or scored
        base_path, base_recipe, data = Path(base_model), None, {}
    else:
        base_path = Path(resolve_model(base_model))
        log.info("[setup] ltk build-langpack ny")
        recipe_file = build_for(pack, build_root, Path(recipes_dir), seed=seed, base_model=base_model)
        base_recipe = load_recipe(recipe_file)
        data = {
            "corpus_en25": build_dir / "corpus" / "train",
            "corpus_en0": target_only_corpus(build_dir, work / "data" / "corpus-en0"),
            "tiers": nested_tiers(build_dir, sc.tiers, work / "data" / "instructions"),
        }
    per_seed: dict[int, tuple[list[dict[str, Any]], dict[str, dict[str, Any]], dict[str, str]]] = {}
    shared: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
    for s in seeds:
        # The first seed keeps the single-seed layout (WORK/SCALE/runs/<arm>), so earlier runs resume.
        seed_work = work if s == seed else work / f"seed-{s}"
        rows, evals, failed = _run_arms(
            arms,
            sc,
            s,
            seed_work,
            base_path,
            base_recipe,
            build_dir,
            data,
            only,
            started,
            shared,
            with_pref,
            report_only,
        )
        per_seed[s] = (rows, evals, failed)
        for row in rows:
            if row["kind"] == "base":  # the untrained base does not depend on the training seed
                shared[row["arm"]] = (row, evals[row["arm"]])
    rows, evals, failed = per_seed[seed]
    if not rows:
        if report_only:
            raise UsageError(
                f"--report: no arm of scale {sc.name} is measured in {work} yet; run `ltk experiment "
                f"--scale {sc.name}` first (or pass the --work folder it used)"
            )
        raise LtkError("no arm ran")
    found = findings(rows, evals)
    if len(seeds) > 1:
        per_seed_findings = {
            s: {f["claim"]: f["verdict"] for f in findings(r, e)} for s, (r, e, _) in per_seed.items()
        }
        for f in found:
            f["seeds"] = {str(s): fs.get(f["claim"], NOT_MEASURED) for s, fs in per_seed_findings.items()}
    result = {
        "date": date.today().isoformat(),
        "machine": f"{os.cpu_count()}-core CPU ({platform.machine()}), no GPU",
        "scale": asdict(sc),
        "seed": seed,
        "seeds": seeds,
        "base_model": base_model,
        "langpack": pack.code,
        "rows": rows,
        "findings": found,
        "failed": failed,
        "not_measured": [
            a.name
            for a in arms
            if a.name not in evals
            and a.name not in failed
            and (not a.optional or with_pref or a.name in (only or []))
        ],
        "study": STUDY,
        "total_seconds": round(time.monotonic() - started, 1),
        "report_only": report_only,
        "pref_tier": next(a.tier for a in arms if a.name == PREF_ARM),
    }
    if len(seeds) > 1:
        result["per_seed"] = {
            str(s): {"rows": r, "failed": fl} for s, (r, _, fl) in per_seed.items() if s != seed
        }
        result["spread"] = seed_spread({s: r for s, (r, _, _) in per_seed.items()})
    out.mkdir(parents=True, exist_ok=True)
    suffix = "" if sc.name == "full" else f"-{sc.name}"
    if len(seeds) > 1:
        suffix += "-seeds"
    if result["pref_tier"] != max(sc.tiers):  # stage 3 on another tier: keep the headline table as it is
        suffix += f"-pref{result['pref_tier']}"
    json_path, md_path = out / f"results{suffix}.json", out / f"results{suffix}.md"
    png = plot(result, out / f"findings{suffix}.png")
    text = render_markdown(result).replace("(findings.png)", f"({png.name})")
    atomic_write_json(json_path, result)
    atomic_write_text(md_path, text)
    log.info(f"written: {md_path}, {json_path}, {png}")
    result["markdown"] = text
    return result
