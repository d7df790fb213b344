"""Checks run before any model is loaded: data present, base model findable offline, sequence length the
model can take, output folder usable. Every problem is gathered and reported at once (exit 2)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ltk.errors import Problem, ValidationError
from ltk.recipe.load import StageSettings
from ltk.recipe.schema import Recipe


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes") or os.environ.get(
        "TRANSFORMERS_OFFLINE", "0"
    ).lower() in ("1", "true", "yes")


def model_config_file(name: str) -> Path | None:
    """config.json of a local folder or of a hub model already in the local cache; None if not found."""
    path = Path(name).expanduser()
    if path.is_dir():
        return path / "config.json" if (path / "config.json").is_file() else None
    if name.startswith((".", "/", "~")) or path.suffix:
        return None
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(name, "config.json")
    except Exception:  # a malformed id is simply "not found"
        return None
    return Path(cached) if isinstance(cached, str) else None


def parquet_files(folder: str | Path) -> list[Path]:
    folder = Path(folder)
    if folder.is_file() and folder.suffix == ".parquet":
        return [folder]
    return sorted(folder.glob("*.parquet")) if folder.is_dir() else []


def built_tiers(sft_data: str) -> list[int]:
    """Tiers that exist next to the recipe's tier file (``.../instructions/tier-N/train.jsonl``)."""
    instructions = Path(sft_data).parent.parent
    tiers = []
    for child in instructions.glob("tier-*/train.jsonl"):
        suffix = child.parent.name.removeprefix("tier-")
        if suffix.isdigit():
            tiers.append(int(suffix))
    return sorted(tiers)


def check_inputs(
    recipe: Recipe,
    recipe_file: str,
    stages: list[StageSettings],
    *,
    base_model: str,
    resume: bool,
    backend: str = "trl",
) -> dict:
    """Validate everything a run needs, every problem at once. Returns facts found on the way (model
    config, file lists)."""
    facts: dict = {"base_model": base_model, "data": {}}
    problems = [
        *check_data(recipe, recipe_file, stages, facts),
        *check_base_model(recipe, recipe_file, stages, base_model, facts),
        *check_stage_order(recipe, recipe_file, stages, backend),
        *check_pref(recipe, recipe_file, stages),
        *check_outputs(recipe, recipe_file, stages, resume),
        *check_quantization_here(recipe_file, stages),
    ]
    if not problems:  # the data and the base are there: render the SFT data with the chosen template
        problems += check_chat_format(recipe, recipe_file, stages, base_model, backend, facts)
    if problems:
        raise ValidationError(problems)
    return facts


def check_data(recipe: Recipe, recipe_file: str, stages: list[StageSettings], facts: dict) -> list[Problem]:
    """Each stage's data exists: the corpus parquet parts (and English ones when not premixed), the tier."""
    problems: list[Problem] = []
    for s in stages:
        if s.stage == "cpt":
            files = parquet_files(s.data)
            facts["data"]["cpt"] = [str(f) for f in files]
            if not files:
                problems.append(
                    Problem(
                        recipe_file,
                        "ltk.stages.cpt.data",
                        "no corpus parquet files found",
                        s.data,
                        f"build the corpus first: ltk build-langpack {recipe.ltk.langpack} --stage corpus",
                    )
                )
            if not recipe.ltk.english.premixed and recipe.ltk.english.ratio > 0:
                english = parquet_files(recipe.ltk.english.data or "")
                facts["data"]["english"] = [str(f) for f in english]
                if not english:
                    problems.append(
                        Problem(
                            recipe_file,
                            "ltk.english.data",
                            "no English parquet files found (premixed: false needs them)",
                            recipe.ltk.english.data,
                            "point it at a folder of parquet files with a text column",
                        )
                    )
        elif s.stage == "pref":
            facts["data"]["pref"] = [s.data] if Path(s.data).is_file() else []  # checked by check_pref
        else:
            facts["data"]["sft"] = [s.data]
            if not Path(s.data).is_file():
                tier = recipe.ltk.stages.sft.tier
                built = built_tiers(s.data)
                fix = (
                    f"tiers built: {', '.join(map(str, built))}; pick one with --tier N or set ltk.stages.sft.tier,"
                    f" or grow them: ltk build-langpack {recipe.ltk.langpack} --stage instructions --max-tier {tier}"
                    if built
                    else f"build the instruction tiers first: ltk build-langpack {recipe.ltk.langpack} "
                    "--stage instructions"
                )
                problems.append(
                    Problem(recipe_file, "ltk.stages.sft.data", f"tier {tier} was not built", s.data, fix)
                )
    return problems


def check_base_model(
    recipe: Recipe, recipe_file: str, stages: list[StageSettings], base_model: str, facts: dict
) -> list[Problem]:
    """The base model is found locally (folder, embedded asset, hub cache) or may be downloaded, and takes
    each stage's sequence length."""
    problems: list[Problem] = []
    config_path = model_config_file(base_model)
    if config_path is None:
        if Path(base_model).expanduser().exists() or base_model.startswith((".", "/", "~")):
            problems.append(
                Problem(
                    recipe_file,
                    "base_model",
                    "base model folder not found or has no config.json",
                    base_model,
                    "give a transformers model folder (config.json + weights)",
                )
            )
        elif _offline():
            problems.append(
                Problem(
                    recipe_file,
                    "base_model",
                    "base model not found offline (HF_HUB_OFFLINE is set and it is not in the local cache)",
                    base_model,
                    "give a local folder, use embedded:smollm2-135m, or download it while online",
                )
            )
        return problems
    config = json.loads(config_path.read_text(encoding="utf-8"))
    facts["model_config"] = {
        k: config.get(k) for k in ("model_type", "max_position_embeddings", "vocab_size", "hidden_size")
    }
    max_pos = config.get("max_position_embeddings")
    for s in stages:
        if max_pos and s.sequence_len > max_pos:
            key = (
                "sequence_len"
                if s.sequence_len == recipe.sequence_len
                else f"ltk.stages.{s.stage}.sequence_len"
            )
            problems.append(
                Problem(
                    recipe_file,
                    key,
                    f"longer than the model can take (max_position_embeddings {max_pos})",
                    s.sequence_len,
                    f"use at most {max_pos}",
                )
            )
    return problems


def check_stage_order(
    recipe: Recipe, recipe_file: str, stages: list[StageSettings], backend: str
) -> list[Problem]:
    """Stage 2 alone needs stage 1's result when it starts from it."""
    if {s.stage for s in stages} != {"sft"} or recipe.ltk.stages.sft.start_from != "cpt":
        return []
    # What stage 1 leaves: final/ (trl backend) or merged/ (axolotl backend, merge-lora).
    cpt_final = Path(recipe.output_dir) / "cpt" / ("merged" if backend == "axolotl" else "final")
    marker = "config.json" if backend == "axolotl" else "ltk_stage.json"
    if (cpt_final / marker).is_file():
        return []
    return [
        Problem(
            recipe_file,
            "ltk.stages.sft.start_from",
            "stage 2 starts from stage 1, which has not finished",
            str(cpt_final),
            "run --stage cpt (or --stage all) first, or set start_from: base",
        )
    ]


def check_pref(recipe: Recipe, recipe_file: str, stages: list[StageSettings]) -> list[Problem]:
    """Stage 3 needs an SFT stage before it (in this run, or finished) and its prompts; a configured judge
    must answer now, not after hours of training."""
    pref = [s for s in stages if s.stage == "pref"]
    if not pref:
        return []
    from ltk.train.prefs import JUDGE_FIX, JudgeUnreachable, judge_backend, pref_problems

    problems = pref_problems(recipe, recipe_file, pref[0], stages_run={s.stage for s in stages})
    if not problems and recipe.ltk.stages.pref.judge_url:
        try:
            judge_backend(recipe.ltk.stages.pref)
        except JudgeUnreachable as exc:
            problems.append(
                Problem(
                    recipe_file, "ltk.stages.pref.judge_url", f"the judge is unreachable: {exc.reason}",
                    recipe.ltk.stages.pref.judge_url, JUDGE_FIX,
                )
            )  # fmt: skip
    return problems


def check_outputs(
    recipe: Recipe, recipe_file: str, stages: list[StageSettings], resume: bool
) -> list[Problem]:
    """Output folders are usable, an unfinished run is not overwritten by accident, configs exist."""
    problems: list[Problem] = []
    for s in stages:
        out = Path(s.output_dir)
        if out.exists() and not out.is_dir():
            problems.append(Problem(recipe_file, "output_dir", "exists and is not a folder", str(out)))
        elif not resume and any(out.glob("checkpoint-*")) and not (out / "final").exists():
            problems.append(
                Problem(
                    recipe_file,
                    "output_dir",
                    f"stage {s.stage} has checkpoints from an unfinished run",
                    str(out),
                    "continue it with --resume, or remove the folder to start over",
                )
            )
    if recipe.deepspeed and not Path(recipe.deepspeed).is_file():
        problems.append(Problem(recipe_file, "deepspeed", "config file not found", recipe.deepspeed))
    return problems


def check_sharding_device(recipe: Recipe, recipe_file: str) -> None:
    """FSDP and DeepSpeed need accelerators: on CPU accelerate drops both without a word and trains plain
    data parallelism instead (its FSDP and DeepSpeed paths are for GPU-type devices only), so refuse."""
    asked = [(key, getattr(recipe, key)) for key in ("fsdp", "deepspeed") if getattr(recipe, key)]
    if not asked:
        return
    import torch

    if torch.cuda.is_available():
        return
    raise ValidationError(
        [
            Problem(
                recipe_file,
                key,
                "needs GPUs: accelerate runs FSDP and DeepSpeed on accelerators only; on this CPU-only "
                "machine it would silently train plain data parallelism instead",
                value,
                f"remove `{key}` (and its config) to train on CPU (torchrun still runs DDP), or run on GPUs",
            )
            for key, value in asked
        ]
    )


def check_quantization_here(recipe_file: str, stages: list[StageSettings]) -> list[Problem]:
    """4-bit/8-bit base weights need a bitsandbytes that runs on this machine."""
    from ltk.train.weights import check_quantization

    problems = []
    for s in stages:
        why = check_quantization(s)
        if why:
            key = (
                "adapter"
                if s.adapter == "qlora"
                else "load_in_4bit"
                if s.quantize == "4bit"
                else "load_in_8bit"
            )
            problems.append(
                Problem(
                    recipe_file,
                    key,
                    f"stage {s.stage} loads the base in {s.quantize}, but {why}",
                    s.adapter,
                    "install bitsandbytes where it runs (pip install 'ltk[quant]'), or use adapter: lora "
                    "without load_in_4bit/load_in_8bit",
                )
            )
            break
    return problems


def check_chat_format(
    recipe: Recipe,
    recipe_file: str,
    stages: list[StageSettings],
    base_model: str,
    backend: str,
    facts: dict | None = None,
) -> list[Problem]:
    """Every SFT example renders with the chosen template before anything trains (a template that rejects
    the data's roles fails here, naming the example)."""
    sft = [s for s in stages if s.stage == "sft"]
    if not sft or backend != "trl":
        return []
    from ltk.errors import UsageError
    from ltk.train.chat import chat_format, check_renders
    from ltk.train.data import load_messages

    try:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(base_model, trust_remote_code=recipe.trust_remote_code)
        fmt = chat_format(tokenizer, recipe.chat_template, recipe.chat_template_jinja, recipe.eot_tokens)
        check_renders(tokenizer, fmt, load_messages(sft[0].data)["messages"], sft[0].data)
        if facts is not None:
            facts["chat_format"] = fmt.describe()
    except UsageError as exc:
        key = "chat_template_jinja" if recipe.chat_template == "jinja" else "chat_template"
        return [Problem(recipe_file, key, str(exc).split("\n")[0], recipe.chat_template, _fix_line(str(exc)))]
    except OSError:
        return []  # the tokenizer is not local: the stage reports it when it loads the model
    return []


def _fix_line(message: str) -> str:
    for line in message.splitlines():
        if line.strip().startswith("fix:"):
            return line.strip()[4:].strip()
    return "see the message above"
