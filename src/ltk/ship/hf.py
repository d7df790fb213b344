"""``--format hf``: merged safetensors in the base's dtype, the tokenizer with its chat template,
``generation_config.json`` whose ``eos_token_id`` lists the end-of-turn ids, and the model card as
``README.md`` with the metadata block the hub reads."""

from __future__ import annotations

import contextlib
import json
import logging
from pathlib import Path
from typing import Any

from ltk.errors import UsageError
from ltk.ship.source import ModelSource, end_of_turn_ids
from ltk.ship.template import tokenizer_template

log = logging.getLogger(__name__)
DTYPES = ("float32", "bfloat16", "float16")


def base_dtype(source: ModelSource) -> str:
    """The dtype the base model was published in (training keeps fp32 master weights; an export goes back
    to the base's dtype). Read from the base's config.json; float32 when it says nothing."""
    from ltk.assets import resolve_model

    candidates: list[Path] = []
    base = source.base_model()
    if base:
        # an unknown embedded name: fall back to the folder's own config
        with contextlib.suppress(Exception):
            candidates.append(Path(resolve_model(base)))
    if isinstance(source.folder, Path):
        candidates.append(source.folder)
    for folder in candidates:
        try:
            config = json.loads((folder / "config.json").read_text("utf-8"))
        except (OSError, ValueError):
            continue
        dtype = config.get("dtype") or config.get("torch_dtype")
        if dtype in DTYPES:
            return dtype
    return "float32"


def check_dtype(dtype: str) -> str:
    if dtype not in DTYPES:
        raise UsageError(f"--dtype {dtype!r} is not one of {', '.join(DTYPES)}")
    return dtype


def save_hf(model: Any, tokenizer: Any, source: ModelSource, out: Path, dtype: str) -> dict[str, Any]:
    """Write the model folder into ``out`` (a temporary folder the caller renames). Returns facts."""
    import torch

    model = model.to(getattr(torch, dtype))
    eot = end_of_turn_ids(source.folder, tokenizer)
    template = tokenizer_template(tokenizer)
    if template:
        tokenizer.chat_template = template
    gen = model.generation_config
    gen.eos_token_id = eot if len(eot) > 1 else eot[0] if eot else None
    gen.bos_token_id = tokenizer.bos_token_id
    gen.pad_token_id = tokenizer.pad_token_id
    model.config.dtype = getattr(torch, dtype)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    return {
        "dtype": dtype,
        "parameters": sum(p.numel() for p in model.parameters()),
        "architecture": (model.config.architectures or [type(model).__name__])[0],
        "end_of_turn_ids": eot,
        "chat_template": bool(template),
    }


# -------------------------------------------------------------------------------------------- the card
def card_text(source: ModelSource) -> str:
    """The model card: ltk's report card for a run (results when evaluated), a short one otherwise."""
    from ltk.evaluate.report import Run, load_run, model_card

    if source.run_dir is not None:
        try:
            run = load_run(source.run_dir)
        except UsageError:  # not evaluated yet: the card says so
            run = Run(name=Path(source.run_dir).name, path=Path(source.run_dir))
        return model_card(run, meta=_run_meta(source))
    return _plain_card(source)


def _run_meta(source: ModelSource) -> dict[str, Any]:
    from ltk.evaluate.data import language_info

    recipe = source.recipe()
    if recipe is None:
        return {"model_requested": source.base_model() or source.given}
    build_dir = Path(recipe.ltk.build_dir)
    return {
        "build_dir": str(build_dir),
        "language": language_info(build_dir),
        "model_requested": str(recipe.base_model),
        "stage": source.stage,
    }


def _plain_card(source: ModelSource) -> str:
    import yaml

    from ltk.assets import EMBEDDED_HUB_IDS
    from ltk.evaluate.report import HUB_ID_RE

    front: dict[str, Any] = {"tags": ["ltk"], "pipeline_tag": "text-generation"}
    base, licence = EMBEDDED_HUB_IDS.get(source.given, (source.given, None))
    if HUB_ID_RE.match(base) and not Path(base).exists():
        front["base_model"] = base
    if licence:
        front["license"] = licence.lower()
    return "\n".join(
        [
            "---",
            yaml.safe_dump(front, sort_keys=True).strip(),
            "---",
            "",
            f"# {base}",
            "",
            f"Exported with `ltk export` from `{source.given}`"
            + (f" (licence {licence})." if licence else "; see the base model's card for its licence."),
            "",
        ]
    )


def validate_card(text: str, where: Path) -> dict[str, Any]:
    """Parse the card with huggingface_hub's own card classes (offline) and check the hub's metadata keys:
    a card the hub would misread is an error here, not after an upload."""
    from huggingface_hub import ModelCard

    try:
        data = ModelCard(text).data.to_dict()
    except ValueError as exc:
        raise UsageError(f"{where}: the model card's metadata does not parse: {exc}") from None
    problems = []
    for code in data.get("language") or []:
        if not (isinstance(code, str) and code.isalpha() and len(code) in (2, 3)):
            problems.append(f"language {code!r} is not an ISO 639 code")
    if "license" in data and data["license"] != str(data["license"]).lower():
        problems.append(f"license {data['license']!r} must be a lowercase hub licence id")
    if "base_model" in data and str(data["base_model"]).count("/") != 1:
        problems.append(f"base_model {data['base_model']!r} is not a hub id (owner/name)")
    if problems:
        raise UsageError(f"{where}: model card metadata: " + "; ".join(problems))
    return data
