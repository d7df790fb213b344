"""Preference pairs against code-switching, built by ltk from the SFT model's own answers (stage 3's data).

For the prompts of the training tier (never a held-out prompt: excluded by id and by text) whose reference
answer is itself in the target language (a prompt that asks for English is not a code-switch), the SFT
model samples ``samples_per_prompt`` answers (fixed batches of ``sampling_batch`` prompts, each seeded).
Each answer is scored with ltk's code-switch detector (:mod:`ltk.evaluate.codeswitch`): the share of its
words that are not in the target language. An answer *stays* when that share is at most
``chosen_max_switch`` and *switches* when it is above ``rejected_min_switch``. A prompt gives one pair
when one answer stays and another switches: the most-switched answer is rejected, the cleanest one (or,
with a judge, the best judged one) is chosen; the tier's reference answer stands in as chosen when no
sample stays (``reference_as_chosen``).

Written to ``<output_dir>/pref/pairs/``: ``train.jsonl`` (``id``, ``prompt``, ``chosen``, ``rejected`` in
the conversational format TRL's DPOTrainer and Axolotl's ``chat_template.default`` read),
``samples.jsonl`` (every sampled answer with its scores) and ``manifest.json`` (counts, how each pair was
chosen, the detector's scores, seed, sha256s, versions). While sampling, ``pairs.work/`` holds one line per
finished prompt (fsynced), so a rerun after a crash samples only what is missing; the pairs folder appears
only when complete, and the same inputs and seed give the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ltk.errors import LtkError, UsageError
from ltk.io import (
    atomic_write_json,
    json_text,
    library_versions,
    sha256_file,
    staged_dir,
    write_jsonl,
)
from ltk.recipe.load import StageSettings
from ltk.recipe.schema import PrefStage, Recipe

log = logging.getLogger(__name__)

PAIRS_FORMAT = 1
STAYS, SWITCHES, BETWEEN, EMPTY = "stays", "switches", "between", "empty"
# An empty reasoning block some templates (Qwen3) make the model write before its answer: not the answer.
THINK_RE = re.compile(r"^\s*<think>.*?</think>\s*", re.S)


# ------------------------------------------------------------------------------------------------ layout
def pairs_dir(recipe: Recipe) -> Path:
    return Path(recipe.output_dir) / "pref" / "pairs"


def sft_final(recipe: Recipe) -> Path:
    return Path(recipe.output_dir) / "sft" / "final"


def heldout_file(recipe: Recipe) -> Path:
    from ltk.layout import BuildLayout

    if recipe.ltk.eval.prompts:
        return Path(recipe.ltk.eval.prompts)
    return BuildLayout.of(recipe.ltk.build_dir).heldout_prompts


# ------------------------------------------------------------------------------------------------ prompts
@dataclass(frozen=True)
class PromptRow:
    id: str
    messages: list[dict[str, str]]  # the conversation up to (not including) the answer
    references: tuple[str, ...]  # the tier's answers to this prompt (a prompt may appear more than once)


def _prompt_key(messages: list[dict[str, str]]) -> str:
    return json.dumps(
        [[m.get("role"), (m.get("content") or "").strip()] for m in messages], ensure_ascii=False
    )


def read_heldout(path: Path) -> tuple[set[str], set[str]]:
    """Ids and prompt texts of the held-out prompts (empty when the file does not exist)."""
    ids: set[str] = set()
    keys: set[str] = set()
    if not path.is_file():
        return ids, keys
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        messages = row.get("messages") or []
        if messages and messages[-1].get("role") == "assistant":
            messages = messages[:-1]
        if row.get("id") is not None:
            ids.add(str(row["id"]))
        keys.add(_prompt_key(messages))
    return ids, keys


def read_tier_prompts(path: Path, heldout: Path) -> tuple[list[PromptRow], dict[str, int]]:
    """The tier's distinct prompts in file order, without held-out ones; and what was left out."""
    held_ids, held_keys = read_heldout(heldout)
    counts = {"rows": 0, "heldout": 0, "no_user_turn": 0}
    order: list[str] = []
    found: dict[str, tuple[str, list[dict[str, str]], list[str]]] = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        counts["rows"] += 1
        try:
            row = json.loads(line)
            messages = list(row["messages"])
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise UsageError(f"{path}:{lineno}: not a {{messages}} JSON line ({exc})") from None
        reference = None
        if messages and messages[-1].get("role") == "assistant":
            reference = messages[-1].get("content") or ""
            messages = messages[:-1]
        if not any(m.get("role") == "user" for m in messages):
            counts["no_user_turn"] += 1
            continue
        row_id = str(row.get("id", f"{path.name}:{lineno}"))
        key = _prompt_key(messages)
        if row_id in held_ids or key in held_keys:
            counts["heldout"] += 1
            continue
        if key not in found:
            order.append(key)
            found[key] = (row_id, messages, [])
        if reference is not None:
            found[key][2].append(reference)
    prompts = [PromptRow(found[k][0], found[k][1], tuple(found[k][2])) for k in order]
    counts["distinct_prompts"] = len(prompts)
    return prompts, counts


# ------------------------------------------------------------------------------------------------ scoring
def switch_share(detector: Any, text: str) -> tuple[int, int]:
    """(words, non-target words) of one answer, as the code-switch metric counts them."""
    item = detector.analyze([text], max_examples=0)["items"][0]
    return int(item["words"]), int(item["non_target_words"])


def classify(words: int, non_target: int, spec: PrefStage) -> str:
    if not words:
        return EMPTY
    share = non_target / words
    if share <= spec.chosen_max_switch:
        return STAYS
    if share > spec.rejected_min_switch:
        return SWITCHES
    return BETWEEN


def _share(words: int, non_target: int) -> float | None:
    return round(non_target / words, 6) if words else None


def select_prompts(
    prompts: list[PromptRow], detector: Any, spec: PrefStage, seed: int
) -> tuple[list[PromptRow], dict[str, int]]:
    """Prompts whose reference answer stays in the target language (others ask for another language), at
    most ``max_prompts`` of them, a seeded choice kept in file order."""
    eligible: list[PromptRow] = []
    dropped = 0
    for p in prompts:
        staying = tuple(r for r in p.references if classify(*switch_share(detector, r), spec) == STAYS)
        if p.references and not staying:
            dropped += 1
            continue
        eligible.append(PromptRow(p.id, p.messages, staying))
    if len(eligible) > spec.max_prompts:
        keep = sorted(random.Random(seed).sample(range(len(eligible)), spec.max_prompts))
        eligible = [eligible[i] for i in keep]
    return eligible, {"reference_not_in_target": dropped, "sampled": len(eligible)}


# ------------------------------------------------------------------------------------------------ sampling
def prompt_seed(seed: int, prompt_id: str) -> int:
    """A seed per prompt: its samples do not depend on which prompts ran before (resume, batching)."""
    return int(hashlib.sha256(f"{seed}:{prompt_id}".encode()).hexdigest()[:8], 16)


def clean_answer(text: str) -> str:
    return THINK_RE.sub("", text, count=1).strip()


def sample_answers(
    model: Any, tokenizer: Any, messages: list[dict[str, str]], spec: PrefStage, seed: int
) -> list[str]:
    """``samples_per_prompt`` sampled answers to one prompt (seeded; one generate call)."""
    return sample_batch(model, tokenizer, [messages], spec, seed)[0]


def sample_batch(
    model: Any, tokenizer: Any, conversations: list[list[dict[str, str]]], spec: PrefStage, seed: int
) -> list[list[str]]:
    """``samples_per_prompt`` sampled answers to each of a few prompts, in one seeded generate call (a
    batch of 8 prompts sampled 2x faster than one prompt at a time, SmolLM2-135M on the loaded 2-core CPU)."""
    import torch

    from ltk.evaluate.generation import render_prompt

    old_side = tokenizer.padding_side
    tokenizer.padding_side = "left"  # decoder-only models continue from the right edge
    try:
        enc = tokenizer(
            [render_prompt(tokenizer, m) for m in conversations],
            return_tensors="pt",
            padding=True,
            add_special_tokens=not getattr(tokenizer, "chat_template", None),
        ).to(next(model.parameters()).device)
    finally:
        tokenizer.padding_side = old_side
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    torch.manual_seed(seed)
    with torch.no_grad():
        out = model.generate(
            **enc,
            do_sample=True,
            temperature=spec.temperature,
            top_p=spec.top_p,
            top_k=0,  # no top-k cut (generation configs often carry 50): temperature and top_p only
            num_return_sequences=spec.samples_per_prompt,
            max_new_tokens=spec.max_new_tokens,
            pad_token_id=pad_id,
        )
    texts = [
        clean_answer(t)
        for t in tokenizer.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
    ]
    k = spec.samples_per_prompt
    return [texts[i * k : (i + 1) * k] for i in range(len(conversations))]


def load_sampler(path: Path, recipe: Recipe) -> tuple[Any, Any]:
    """The SFT model for sampling: fp32 on a CPU (the faster choice there), bf16 on a GPU."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cuda = torch.cuda.is_available()
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=recipe.trust_remote_code)
        model = AutoModelForCausalLM.from_pretrained(
            path,
            dtype=torch.bfloat16 if cuda else torch.float32,
            trust_remote_code=recipe.trust_remote_code,
            attn_implementation=recipe.attn_implementation,
        )
    except (OSError, ValueError) as exc:
        raise LtkError(f"cannot load the SFT model {path}: {exc}") from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.to("cuda" if cuda else "cpu").eval()
    return model, tokenizer


# --------------------------------------------------------------------------------------------------- judge
JUDGE_FIX = (
    "start the endpoint or correct judge_url / judge_model, or remove them to choose pairs with the "
    "code-switch detector alone"
)


class JudgeUnreachable(UsageError):
    """The preference stage's judge did not answer a probe: a configuration problem (exit 2)."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(
            f"ltk.stages.pref.judge_url: the judge is unreachable: {reason}\n    fix: {JUDGE_FIX}"
        )


def judge_backend(spec: PrefStage, *, probe: bool = True) -> Any:
    """The configured judge (None without one); with ``probe``, one short request first, so an unreachable
    endpoint fails before anything is sampled or written (exit 2)."""
    if not spec.judge_model:
        return None
    from ltk.evaluate.judge import make_backend

    try:
        backend = make_backend(
            spec.judge_url, spec.judge_model, api_key_env=spec.judge_api_key_env, max_retries=1, backoff=0.5,
            timeout=30.0,
        )  # fmt: skip
        if probe and spec.judge_url:
            backend.complete([{"role": "user", "content": "Reply with the word OK."}])
    except LtkError as exc:
        raise JudgeUnreachable(str(exc).splitlines()[0]) from None
    if spec.judge_url:
        backend.max_retries = 4  # the probe answered: the real requests may retry longer
    return backend


def judge_means(
    backend: Any, cache_path: Path, items: list[dict[str, Any]], language: str
) -> dict[str, float | None]:
    """Judge mean (over the rubric's axes) of each item ({id, prompt, answer, reference}), cached."""
    from ltk.evaluate.judge import JudgeCache, judge_samples

    if not items:
        return {}
    result = judge_samples(items, backend, JudgeCache.open(cache_path), language=language)
    out: dict[str, float | None] = {}
    for item in result["items"]:
        scores = list(item["scores"].values())
        out[str(item["id"])] = sum(scores) / len(scores) if scores else None
    return out


# --------------------------------------------------------------------------------------------------- pairs
def choose_pair(
    prompt: PromptRow, samples: list[dict[str, Any]], spec: PrefStage, judged: dict[str, float | None]
) -> tuple[dict[str, Any] | None, str]:
    """One pair for a prompt, or None with the reason. Deterministic: ties go to the earlier sample."""
    switched = [s for s in samples if s["class"] == SWITCHES]
    staying = [s for s in samples if s["class"] == STAYS]
    if not switched:
        return None, "no_sample_switched"
    rejected = max(switched, key=lambda s: (s["share"], -s["index"]))
    if judged:
        staying = [
            s for s in staying if (judged.get(f"{prompt.id}#{s['index']}") or 0.0) >= spec.judge_min_score
        ]

    def rank(s: dict[str, Any]) -> tuple[float, float, int]:
        score = judged.get(f"{prompt.id}#{s['index']}") if judged else None
        return (-(score if score is not None else 0.0), s["share"], s["index"])

    record: dict[str, Any] = {
        "id": prompt.id,
        "rejected_sample": rejected["index"],
        "rejected_switch": rejected["share"],
    }
    if staying:
        chosen = min(staying, key=rank)
        record.update(chosen_from="sample", chosen_sample=chosen["index"], chosen_switch=chosen["share"])
        chosen_text = chosen["text"]
        if judged:
            record["judge"] = {"chosen": judged.get(f"{prompt.id}#{chosen['index']}")}
    elif spec.reference_as_chosen and prompt.references:
        chosen_text = prompt.references[0]
        record.update(chosen_from="reference", chosen_sample=None, chosen_switch=None)
    else:
        return None, "no_sample_stayed"
    record["row"] = {
        "id": prompt.id,
        "prompt": prompt.messages,
        "chosen": [{"role": "assistant", "content": chosen_text}],
        "rejected": [{"role": "assistant", "content": rejected["text"]}],
    }
    return record, f"pair_from_{record['chosen_from']}"


@dataclass(frozen=True)
class PairsResult:
    folder: Path
    pairs: int
    manifest: dict[str, Any]
    reused: bool


def _fingerprint(values: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()


def _stage_stamp(folder: Path) -> str:
    record = folder / "ltk_stage.json"
    return sha256_file(record) if record.is_file() else "missing"


def _read_work(work: Path, fingerprint: str) -> dict[str, list[dict[str, Any]]]:
    """Samples of prompts finished by an earlier, interrupted run with the same inputs (else nothing)."""
    settings = work / "settings.json"
    if not settings.is_file() or json.loads(settings.read_text()).get("fingerprint") != fingerprint:
        shutil.rmtree(work, ignore_errors=True)
        return {}
    done: dict[str, list[dict[str, Any]]] = {}
    path = work / "samples.jsonl"
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
                done[row["id"]] = row["samples"]
            except (json.JSONDecodeError, KeyError, TypeError):
                continue  # a line torn by a crash: that prompt is sampled again (same seed, same answers)
    return done


def _append(path: Path, row: dict[str, Any]) -> None:
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def no_pairs_message(counts: dict[str, Any], spec: PrefStage, n_prompts: int) -> str:
    s = counts["samples"]
    if s[SWITCHES] == 0:
        why = (
            f"none of the {s['total']} answers sampled for {n_prompts} prompts code-switched "
            f"({s[STAYS]} stayed in the target language, {s[BETWEEN]} were mixed below the "
            f"{spec.rejected_min_switch:g} share, {s[EMPTY]} were empty): there is nothing to train against"
        )
        fix = (
            "the SFT model already answers these prompts in the target language; leave ltk.stages.pref off, "
            "or sample more (ltk.stages.pref.max_prompts, samples_per_prompt, temperature) or lower "
            "rejected_min_switch"
        )
    else:
        why = (
            f"{s[SWITCHES]} of the {s['total']} sampled answers code-switched, but on those prompts no answer "
            f"stayed in the target language (share of other-language words at most {spec.chosen_max_switch:g})"
            + (" and reference_as_chosen is off" if not spec.reference_as_chosen else "")
            + (" or reached judge_min_score" if spec.judge_model else "")
        )
        fix = "set ltk.stages.pref.reference_as_chosen: true, raise chosen_max_switch, or sample more answers"
    return f"no preference pairs kept: {why}\n    fix: {fix}"


def build_pairs(
    recipe: Recipe, s: StageSettings, *, recipe_file: str = "recipe", force: bool = False
) -> PairsResult:
    """Build (or reuse) ``<output_dir>/pref/pairs`` for the recipe's preference stage."""
    from ltk.evaluate.codeswitch import DOMINANCE, detector_for_build
    from ltk.evaluate.data import language_info
    from ltk.log import progress

    spec = recipe.ltk.stages.pref
    source, heldout, model_dir = Path(s.data), heldout_file(recipe), sft_final(recipe)
    problems = pref_problems(recipe, recipe_file, s, stages_run=set())
    if problems:
        from ltk.errors import ValidationError

        raise ValidationError(problems)
    out = pairs_dir(recipe)
    work = out.with_name("pairs.work")
    settings = {
        "format": PAIRS_FORMAT,
        "seed": recipe.seed,
        "source": {"path": str(source), "sha256": sha256_file(source)},
        "heldout": {"path": str(heldout), "sha256": sha256_file(heldout) if heldout.is_file() else None},
        "sft_model": {"path": str(model_dir), "ltk_stage_sha256": _stage_stamp(model_dir)},
        "build_dir": recipe.ltk.build_dir,
        "settings": spec.model_dump(
            mode="json",
            include={
                "max_prompts",
                "samples_per_prompt",
                "sampling_batch",
                "temperature",
                "top_p",
                "max_new_tokens",
                "chosen_max_switch",
                "rejected_min_switch",
                "reference_as_chosen",
                "judge_url",
                "judge_model",
                "judge_min_score",
            },
        ),  # fmt: skip
    }
    fingerprint = _fingerprint(settings)
    manifest_file = out / "manifest.json"
    if not force and manifest_file.is_file():
        old = json.loads(manifest_file.read_text(encoding="utf-8"))
        if old.get("fingerprint") == fingerprint:
            log.info(f"pref: {old['counts']['pairs']} pairs already built for these inputs: {out}")
            return PairsResult(out, old["counts"]["pairs"], old, reused=True)
    backend = judge_backend(spec)  # an unreachable judge fails here, before anything is sampled
    build_dir = Path(recipe.ltk.build_dir)
    info = language_info(build_dir)
    detector = detector_for_build(build_dir, info)
    all_prompts, read_counts = read_tier_prompts(source, heldout)
    prompts, chosen_counts = select_prompts(all_prompts, detector, spec, recipe.seed)
    if not prompts:
        raise UsageError(
            f"{source}: no prompt to sample: {read_counts['rows']} rows, {read_counts['heldout']} held out, "
            f"{chosen_counts['reference_not_in_target']} whose reference answer is not in the target language\n"
            "    fix: point ltk.stages.pref.data at an instruction file with target-language answers"
        )
    done = _read_work(work, fingerprint)
    work.mkdir(parents=True, exist_ok=True)
    atomic_write_json(work / "settings.json", {"fingerprint": fingerprint, **settings})
    if done:
        log.info(f"pref: resuming, {len(done)} of {len(prompts)} prompts already sampled")
    # Fixed batches of prompts, each seeded from its first prompt: a resumed run samples exactly the
    # batches an uninterrupted one would (a batch is redone whole when any of its prompts is missing).
    size = spec.sampling_batch
    batches = [prompts[i : i + size] for i in range(0, len(prompts), size)]
    todo = [b for b in batches if any(p.id not in done for p in b)]
    if todo:
        model, tokenizer = load_sampler(model_dir, recipe)
        bar = progress(total=sum(len(b) for b in todo), desc="pref: sampling answers", unit="prompt")
        for batch in todo:
            answers = sample_batch(
                model, tokenizer, [p.messages for p in batch], spec, prompt_seed(recipe.seed, batch[0].id)
            )
            for p, texts in zip(batch, answers, strict=True):
                samples = []
                for index, text in enumerate(texts):
                    words, non_target = switch_share(detector, text)
                    samples.append(
                        {
                            "index": index,
                            "text": text,
                            "words": words,
                            "non_target_words": non_target,
                            "share": _share(words, non_target),
                            "class": classify(words, non_target, spec),
                        }
                    )
                _append(work / "samples.jsonl", {"id": p.id, "samples": samples})
                done[p.id] = samples
            bar.update(len(batch))
        bar.close()
        del model
    judged: dict[str, float | None] = {}
    if backend is not None:
        # Only answers that could be chosen: those that stay, on prompts where another answer switches.
        items = [
            {
                "id": f"{p.id}#{x['index']}",
                "prompt": p.messages[-1]["content"],
                "answer": x["text"],
                "reference": p.references[0] if p.references else None,
            }
            for p in prompts
            if any(x["class"] == SWITCHES for x in done[p.id])
            for x in done[p.id]
            if x["class"] == STAYS
        ]
        judged = judge_means(backend, work / "judge.jsonl", items, recipe.ltk.language_name or info["name"])
    sample_counts = {k: 0 for k in ("total", STAYS, SWITCHES, BETWEEN, EMPTY)}
    outcomes: dict[str, int] = {}
    records: list[dict[str, Any]] = []
    for p in prompts:
        for x in done[p.id]:
            sample_counts["total"] += 1
            sample_counts[x["class"]] += 1
        record, outcome = choose_pair(p, done[p.id], spec, judged)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        if record is not None:
            records.append(record)
    counts: dict[str, Any] = {
        "tier_rows": read_counts["rows"],
        "prompts": {
            "distinct": read_counts["distinct_prompts"],
            "left_out_heldout": read_counts["heldout"],
            "left_out_reference_not_in_target": chosen_counts["reference_not_in_target"],
            "sampled": len(prompts),
        },
        "samples": sample_counts,
        "outcomes": dict(sorted(outcomes.items())),
        "pairs": len(records),
    }
    if not records:
        shutil.rmtree(work, ignore_errors=True)  # nothing partial: no pairs folder, no work left behind
        raise UsageError(no_pairs_message(counts, spec, len(prompts)))
    with staged_dir(out) as tmp:
        files = {
            "train.jsonl": write_jsonl(tmp / "train.jsonl", [r["row"] for r in records]),
            "samples.jsonl": write_jsonl(
                tmp / "samples.jsonl", [{"id": p.id, "samples": done[p.id]} for p in prompts]
            ),
        }
        manifest = {
            "format": PAIRS_FORMAT,
            "fingerprint": fingerprint,
            **settings,
            "counts": counts,
            "detector": {
                "what": "share of an answer's words that are not in the target language (ltk.evaluate.codeswitch)",
                "word_labels": f"script, then target/English corpus lexicons (x{DOMINANCE:g}), then the span's "
                "pycld2 language or lexicon majority",
                "stays": f"share <= {spec.chosen_max_switch:g}",
                "switches": f"share > {spec.rejected_min_switch:g}",
                "target_script_latin": detector.target_script_latin,
                "target_lexicon_words": len(detector.target_lexicon),
                "english_lexicon_words": len(detector.english_lexicon),
            },
            "judge": None
            if backend is None
            else {"id": backend.id, "judged_answers": len(judged), "min_score": spec.judge_min_score},
            "pairs": [{k: v for k, v in r.items() if k != "row"} for r in records],
            "files": files,
            "versions": library_versions("ltk", "torch", "transformers"),
        }
        (tmp / "manifest.json").write_text(json_text(manifest), encoding="utf-8")
    shutil.rmtree(work, ignore_errors=True)
    return PairsResult(out, len(records), manifest, reused=False)


# ---------------------------------------------------------------------------------------------- checks
def pref_problems(recipe: Recipe, recipe_file: str, s: StageSettings, *, stages_run: set[str]) -> list[Any]:
    """What stage 3 needs before anything loads: an SFT stage before it (run now, or finished and merged)
    and the prompts file. ``stages_run``: the stages this run trains before it."""
    from ltk.errors import Problem

    problems: list[Problem] = []
    final = sft_final(recipe)
    sft = recipe.ltk.stages.sft
    if "sft" not in stages_run and not (final / "ltk_stage.json").is_file():
        problems.append(
            Problem(
                recipe_file,
                "ltk.stages.pref",
                "the preference stage starts from the SFT stage's model, and there is none"
                + (" (ltk.stages.sft is disabled)" if not sft.enabled else ""),
                str(final),
                "run the sft stage first (ltk train RECIPE --stage sft, or --stage all with ltk.stages.sft."
                "enabled: true)",
            )
        )
    elif sft.save != "merged" or (
        (final / "ltk_stage.json").is_file()
        and json.loads((final / "ltk_stage.json").read_text()).get("saved_as") == "adapter"
    ):
        problems.append(
            Problem(
                recipe_file,
                "ltk.stages.sft.save",
                "the preference stage trains a new adapter on the SFT stage's merged model",
                sft.save,
                "set ltk.stages.sft.save: merged and rerun the sft stage",
            )
        )
    if not Path(s.data).is_file():
        problems.append(
            Problem(
                recipe_file,
                "ltk.stages.pref.data" if recipe.ltk.stages.pref.data else "ltk.stages.sft.data",
                "the instruction file whose prompts the preference stage samples does not exist",
                s.data,
                f"build the tiers first: ltk build-langpack {recipe.ltk.langpack} --stage instructions",
            )
        )
    return problems


def build_prefs(
    recipe_path: str | Path,
    *,
    output_dir: str | None = None,
    seed: int | None = None,
    force: bool = False,
) -> PairsResult:
    """``ltk build-prefs RECIPE``: the preference pairs of a recipe's stage 3, without training.

    Runs whether or not ``ltk.stages.pref.enabled`` is set (to look at the pairs before turning it on)."""
    from ltk.recipe.load import load_recipe, stage_settings
    from ltk.validation import override

    recipe = load_recipe(recipe_path)
    values: dict[str, Any] = {}
    if output_dir:
        values["output_dir"] = output_dir
    if seed is not None:
        values["seed"] = seed
    if values:
        recipe = override(recipe, values, source="command line")
    return build_pairs(recipe, stage_settings(recipe, "pref"), recipe_file=str(recipe_path), force=force)


def summary(result: PairsResult) -> list[str]:
    """The end-of-run summary lines of a pairs build."""
    c = result.manifest["counts"]
    p, s, o = c["prompts"], c["samples"], c["outcomes"]
    return [
        f"pairs:    {c['pairs']} ({o.get('pair_from_sample', 0)} chosen from a sample, "
        f"{o.get('pair_from_reference', 0)} from the reference answer)",
        f"prompts:  {p['sampled']} sampled of {p['distinct']} distinct ({p['left_out_heldout']} held-out left out, "
        f"{p['left_out_reference_not_in_target']} whose reference is not in the target language)",
        f"answers:  {s['total']} sampled: {s[STAYS]} stayed in the language, {s[SWITCHES]} switched, "
        f"{s[BETWEEN]} in between, {s[EMPTY]} empty",
        f"no pair:  {o.get('no_sample_switched', 0)} prompts where no answer switched, "
        f"{o.get('no_sample_stayed', 0)} where none stayed",
        f"written:  {result.folder / 'train.jsonl'} (+ samples.jsonl, manifest.json, seed {result.manifest['seed']})"
        + (" [reused: same inputs]" if result.reused else ""),
    ]
