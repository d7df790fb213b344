"""What ``ltk chat`` and ``ltk export`` were given: a model folder, ``embedded:smollm2-135m``, a stage's
``final/`` folder, or a run folder (``runs/ny``), which means its last finished stage.

A stage saved as an adapter (``save: adapter`` in the recipe) is merged into its base with PEFT on load, so
both commands always work on one plain model.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ltk.errors import LtkError, UsageError
from ltk.evaluate import STAGE_ORDER
from ltk.layout import RunLayout

STAGE_FILE = "ltk_stage.json"  # what `ltk train` writes into every finished stage (ltk.train.stages)
ADAPTER_FILE = "adapter_config.json"
HUB_ID_RE = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass
class ModelSource:
    """Where the weights are and what ltk knows about them."""

    given: str
    folder: Path | str  # a transformers model folder (or a PEFT adapter folder), or a hub id
    run_dir: Path | None = None
    stage: str | None = None
    record: dict[str, Any] = field(default_factory=dict)  # the stage's ltk_stage.json

    @property
    def is_adapter(self) -> bool:
        return isinstance(self.folder, Path) and (self.folder / ADAPTER_FILE).is_file()

    @property
    def label(self) -> str:
        if self.run_dir is not None:
            return f"{self.run_dir} ({self.stage})"
        return self.given

    def recipe(self) -> Any | None:
        """The recipe the run was trained with (``runs/<name>/recipe.yml``), when there is one."""
        if self.run_dir is None or not RunLayout(self.run_dir).recipe.is_file():
            return None
        from ltk.recipe.load import load_recipe

        return load_recipe(RunLayout(self.run_dir).recipe)

    def base_model(self) -> str | None:
        """The base the run started from, as the recipe names it (``embedded:...``, a hub id or a path)."""
        recipe = self.recipe()
        if recipe is not None:
            return str(recipe.base_model)
        return self.record.get("base_model")


def finished_stages(run_dir: Path) -> list[str]:
    """Stages of a run folder whose ``final/`` is complete (has ``ltk_stage.json``), in training order."""
    layout = RunLayout(run_dir)
    return [s for s in STAGE_ORDER if (layout.final(s) / STAGE_FILE).is_file()]


def is_run_folder(path: Path) -> bool:
    layout = RunLayout(path)
    return layout.recipe.is_file() or any(layout.stage(s).is_dir() for s in STAGE_ORDER if s != "base")


def resolve_source(name: str | Path) -> ModelSource:
    """A model folder, stage folder, run folder or ``embedded:`` name -> ModelSource (no weights loaded)."""
    from ltk.assets import resolve_model

    given = str(name)
    resolved = resolve_model(given)
    path = Path(resolved).expanduser()
    if not path.exists():
        offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
        if not HUB_ID_RE.match(resolved) or offline:
            raise UsageError(
                f"{given}: no such model or run folder"
                + (" (and HF_HUB_OFFLINE is set, so it is not looked up on the hub)" if offline else "")
                + "; check the path"
            )
        return ModelSource(given=given, folder=resolved)  # a hub id (owner/name): transformers decides
    if not path.is_dir():
        raise UsageError(f"{given} is a file; give a model folder, a stage's final/ folder or a run folder")
    if (path / "config.json").is_file() or (path / ADAPTER_FILE).is_file():
        record = _read_record(path)
        run_dir = path.parent.parent if record and path.name == "final" else None
        return ModelSource(given, path, run_dir, record.get("stage") if record else None, record or {})
    if is_run_folder(path):
        done = finished_stages(path)
        if not done:
            layout = RunLayout(path)
            raise UsageError(
                f"run folder {path} has no finished stage (no {layout.final('cpt')}/{STAGE_FILE} or "
                f"{layout.final('sft')}/{STAGE_FILE}).\n    fix: finish training with `ltk train "
                f"{layout.recipe} --resume`, or give a model folder"
            )
        stage = done[-1]
        final = RunLayout(path).final(stage)
        return ModelSource(given, final, path, stage, _read_record(final) or {})
    raise UsageError(
        f"{given} is neither a model folder (no config.json) nor a run folder (no recipe.yml, cpt/ or sft/); "
        "give what `ltk train` wrote (runs/<name>) or a folder that save_pretrained wrote"
    )


def _read_record(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / STAGE_FILE).read_text("utf-8"))
    except (OSError, ValueError):
        return None


def end_of_turn_ids(folder: Path | str, tokenizer: Any) -> list[int]:
    """The ids that end an assistant turn: ``generation_config.json``'s ``eos_token_id`` (training writes the
    end-of-turn tokens there), else the tokenizer's EOS."""
    ids: list[int] = []
    path = Path(folder) / "generation_config.json"
    if path.is_file():
        try:
            eos = json.loads(path.read_text("utf-8")).get("eos_token_id")
        except ValueError:
            eos = None
        ids = [eos] if isinstance(eos, int) else [int(i) for i in eos or []]
    if not ids and tokenizer.eos_token_id is not None:
        ids = [int(tokenizer.eos_token_id)]
    return list(dict.fromkeys(ids))


def load_source(
    source: ModelSource, *, dtype: Any = None, device: str = "cpu", trust_remote_code: bool = False
) -> tuple[Any, Any]:
    """(model, tokenizer) in eval mode; an adapter is merged into its base with PEFT first."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = str(source.folder)
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=trust_remote_code)
        if source.is_adapter:
            model = _merged_adapter(source, tokenizer, dtype, trust_remote_code)
        else:
            model = AutoModelForCausalLM.from_pretrained(
                folder, dtype=dtype or "auto", trust_remote_code=trust_remote_code
            )
    except (OSError, ValueError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise LtkError(
            f"cannot load model {folder!r}: {first}\n    fix: give a local model folder (config.json, weights "
            "and tokenizer), a run folder, or a hub id reachable from this machine"
        ) from None
    model.to(device)
    model.eval()
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def _merged_adapter(source: ModelSource, tokenizer: Any, dtype: Any, trust_remote_code: bool) -> Any:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from ltk.assets import resolve_model

    config = json.loads((Path(source.folder) / ADAPTER_FILE).read_text("utf-8"))
    base = config.get("base_model_name_or_path") or source.base_model()
    if not base:
        raise UsageError(
            f"{source.folder}/{ADAPTER_FILE} names no base model (base_model_name_or_path); "
            "set it to the base model's folder or hub id"
        )
    model = AutoModelForCausalLM.from_pretrained(
        resolve_model(base), dtype=dtype or "auto", trust_remote_code=trust_remote_code
    )
    if len(tokenizer) != model.get_input_embeddings().weight.shape[0]:  # an extended vocabulary
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    return PeftModel.from_pretrained(model, str(source.folder)).merge_and_unload()
