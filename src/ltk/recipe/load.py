"""Reading a recipe: strict validation (every problem at once) and the resolved settings of each stage."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ltk.recipe.schema import Recipe
from ltk.validation import read_yaml, validate_model


def validate_recipe(data: Any, file: str) -> Recipe:
    return validate_model(Recipe, data, file, what="a recipe")


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
    adapter: str  # lora | qlora | full
    quantize: str | None  # None | 4bit | 8bit: frozen base weights loaded quantized (bitsandbytes)
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
    """Resolve one stage ('cpt', 'sft' or 'pref'). ``max_steps`` (from the command line) overrides the recipe."""
    spec = getattr(recipe.ltk.stages, stage)

    def pick(name: str) -> Any:
        value = getattr(spec, name)
        return getattr(recipe, name) if value is None else value

    adapter = spec.adapter or recipe.adapter or "full"
    quantize = (
        "4bit" if (recipe.load_in_4bit or adapter == "qlora") else "8bit" if recipe.load_in_8bit else None
    )
    if adapter == "full":
        quantize = None  # a stage that fine-tunes fully cannot train quantized weights
    if stage == "cpt":
        merge, save = spec.merge, "merged" if spec.merge else "adapter"
    else:  # sft and pref: ``save`` says what final/ holds
        merge, save = spec.save == "merged", spec.save
    # A stage that sets num_epochs without max_steps means epochs, not the top-level step count.
    steps = max_steps or spec.max_steps or (None if spec.num_epochs is not None else recipe.max_steps)
    return StageSettings(
        stage=stage,
        # pref samples prompts from its own file, else from the tier the sft stage trained on
        data=spec.data or recipe.ltk.stages.sft.data,
        output_dir=str(Path(recipe.output_dir) / stage),
        sequence_len=pick("sequence_len"),
        adapter=adapter,
        quantize=quantize,
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
