"""Reading a recipe: strict validation (every problem at once) and the resolved settings of each stage."""

from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, get_args

from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from ltk.errors import Problem, ValidationError
from ltk.langpack.load import read_yaml
from ltk.recipe.schema import Recipe

_FIXES = {
    "missing": "add this key",
    "literal_error": "use one of the allowed values",
    "greater_than": "use a larger number",
    "greater_than_equal": "use a larger number",
    "less_than": "use a smaller number",
    "less_than_equal": "use a smaller number",
    "too_short": "add at least one entry",
    "string_too_short": "give a non-empty value",
    "bool_parsing": "use true or false",
    "int_parsing": "use a whole number",
    "float_parsing": "use a number",
}


def _model_at(loc: tuple) -> type[BaseModel] | None:
    """The pydantic model that holds the last key of ``loc`` (to suggest the key a user meant)."""
    current: Any = Recipe
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        field = current.model_fields.get(str(part))
        if field is None:
            return None
        current = field.annotation
        # unwrap list[X] / X | None down to a model class
        for _ in range(3):
            if isinstance(current, type) and issubclass(current, BaseModel):
                break
            models = [a for a in get_args(current) if a is not type(None)]
            current = models[0] if models else None
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def problems_from_pydantic(file: str, exc: PydanticValidationError) -> list[Problem]:
    problems = []
    for err in exc.errors(include_url=False):
        loc = tuple(err.get("loc", ()))
        key = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".") or "(top level)"
        kind = err.get("type", "")
        message = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
        value = None if kind == "missing" or isinstance(err.get("input"), dict) else err.get("input")
        fix = _FIXES.get(kind, "")
        if kind == "extra_forbidden":
            message = "unknown key (recipes are strict: a misspelt key would otherwise be ignored)"
            model = _model_at(loc)
            close = difflib.get_close_matches(str(loc[-1]), list(model.model_fields), n=1) if model else []
            fix = f"did you mean {close[0]!r}?" if close else "remove it"
            value = None
        elif kind == "literal_error":
            expected = err.get("ctx", {}).get("expected")
            fix = f"use one of: {expected}" if expected else fix
        problems.append(Problem(file, key, message, value, fix))
    return problems


def validate_recipe(data: Any, file: str) -> Recipe:
    if not isinstance(data, dict):
        raise ValidationError(
            [Problem(file, "(top level)", "a recipe must be a YAML mapping", type(data).__name__)]
        )
    try:
        return Recipe.model_validate(data)
    except PydanticValidationError as exc:
        raise ValidationError(problems_from_pydantic(file, exc)) from None


def load_recipe(path: str | Path) -> Recipe:
    """Read and validate a recipe file. Raises ValidationError (exit 2) listing every problem."""
    path = Path(path)
    return validate_recipe(read_yaml(path), str(path))


@dataclass(frozen=True)
class StageSettings:
    """Everything one training stage needs, with the stage's overrides applied over the top-level keys."""

    stage: str
    data: str
    output_dir: str
    sequence_len: int
    adapter: str  # lora | full
    lora_r: int
    lora_alpha: int
    lora_dropout: float
    lora_target_modules: list[str]
    lora_modules_to_save: list[str]
    learning_rate: float
    lr_scheduler: str
    warmup_ratio: float
    weight_decay: float
    optimizer: str
    max_grad_norm: float
    micro_batch_size: int
    gradient_accumulation_steps: int
    num_epochs: float
    max_steps: int | None
    merge: bool
    save: str  # merged | adapter (what the stage's final/ holds)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def stage_settings(recipe: Recipe, stage: str, *, max_steps: int | None = None) -> StageSettings:
    """Resolve one stage ('cpt' or 'sft'). ``max_steps`` (from the command line) overrides the recipe."""
    spec = getattr(recipe.ltk.stages, stage)

    def pick(name: str) -> Any:
        value = getattr(spec, name)
        return getattr(recipe, name) if value is None else value

    adapter = spec.adapter or ("lora" if recipe.adapter == "lora" else "full")
    if stage == "cpt":
        merge, save = spec.merge, "merged" if spec.merge else "adapter"
    else:
        merge, save = spec.save == "merged", spec.save
    # A stage that sets num_epochs without max_steps means epochs, not the top-level step count.
    steps = max_steps or spec.max_steps or (None if spec.num_epochs is not None else recipe.max_steps)
    return StageSettings(
        stage=stage,
        data=spec.data,
        output_dir=str(Path(recipe.output_dir) / stage),
        sequence_len=pick("sequence_len"),
        adapter=adapter,
        lora_r=pick("lora_r"),
        lora_alpha=pick("lora_alpha"),
        lora_dropout=pick("lora_dropout"),
        lora_target_modules=list(recipe.lora_target_modules),
        lora_modules_to_save=list(pick("lora_modules_to_save") or []),
        learning_rate=pick("learning_rate"),
        lr_scheduler=pick("lr_scheduler"),
        warmup_ratio=pick("warmup_ratio"),
        weight_decay=recipe.weight_decay,
        optimizer=recipe.optimizer,
        max_grad_norm=recipe.max_grad_norm,
        micro_batch_size=pick("micro_batch_size"),
        gradient_accumulation_steps=pick("gradient_accumulation_steps"),
        num_epochs=pick("num_epochs"),
        max_steps=steps,
        merge=merge,
        save=save,
    )
