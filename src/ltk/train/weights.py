"""How a stage holds its weights, as Axolotl's keys mean them.

| recipe                                   | frozen base weights          | trained weights                   |
|------------------------------------------|------------------------------|-----------------------------------|
| ``adapter: lora``, bf16 on, GPU          | bf16                         | LoRA in fp32, bf16 autocast       |
| ``adapter: lora``, otherwise             | fp32                         | LoRA in fp32 (autocast if on)     |
| ``adapter: qlora`` + ``load_in_4bit``    | NF4 4-bit (bitsandbytes)     | LoRA, PEFT's k-bit preparation    |
| ``load_in_8bit`` + ``adapter: lora``     | int8 (bitsandbytes)          | LoRA, PEFT's k-bit preparation    |
| ``adapter: null`` (full)                 | -                            | fp32 master + autocast            |
| ``adapter: null``, ``bf16: full``        | -                            | pure bf16 weights and optimizer   |

On a CPU without native bf16, LoRA keeps fp32 frozen weights (bf16 would be emulated, slower and no
smaller in activations). Merged and full models are saved in the base's dtype unless ``ltk.save_dtype``
says otherwise; a quantized base is never saved quantized: the adapter is merged into a fresh
full-precision copy of the base.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ltk.errors import LtkError, UsageError
from ltk.recipe.load import StageSettings
from ltk.recipe.schema import Recipe

_DTYPES = {"float32": "float32", "bfloat16": "bfloat16", "float16": "float16"}


@dataclass(frozen=True)
class WeightsPlan:
    """What one stage loads and trains in."""

    load_dtype: str  # float32 | bfloat16 (of the parameters as loaded)
    quantize: str | None  # None | 4bit | 8bit
    compute_dtype: str  # what matmuls run in (autocast or the weights' own dtype)
    trainable_dtype: str

    def describe(self) -> str:
        frozen = f"{self.quantize} ({self.compute_dtype} compute)" if self.quantize else self.load_dtype
        return f"base weights {frozen}, trained weights {self.trainable_dtype}, compute {self.compute_dtype}"


def plan_weights(recipe: Recipe, s: StageSettings, *, cuda: bool, bf16: bool) -> WeightsPlan:
    """The weights plan of a stage from the recipe and the machine (``bf16``: autocast resolved on)."""
    compute = "bfloat16" if bf16 else "float16" if (recipe.fp16 and cuda) else "float32"
    if s.adapter == "full":
        if recipe.bf16 == "full":
            return WeightsPlan("bfloat16", None, "bfloat16", "bfloat16")
        return WeightsPlan("float32", None, compute, "float32")
    if s.quantize:
        # The parts bitsandbytes does not quantize (embeddings, norms, output layer) in bf16 where it runs.
        rest = "bfloat16" if (bf16 and cuda) else "float32"
        return WeightsPlan(rest, s.quantize, compute, "float32")
    # LoRA: frozen weights need no fp32 master copy; halve them where bf16 runs natively (GPUs).
    frozen = "bfloat16" if (bf16 and cuda) else "float32"
    return WeightsPlan(frozen, None, compute, "float32")


def check_quantization(s: StageSettings) -> str | None:
    """Why this stage's quantization cannot run here (None when it can)."""
    if not s.quantize:
        return None
    if importlib.util.find_spec("bitsandbytes") is None:
        return "bitsandbytes is not installed (pip install 'ltk[quant]')"
    try:
        import bitsandbytes  # noqa: F401  (its import fails where no backend can run)
    except Exception as exc:
        return f"bitsandbytes cannot run on this machine: {exc}"
    return None


def load_for_stage(path: str, recipe: Recipe, plan: WeightsPlan) -> Any:
    """The model as the plan says (quantized and prepared for k-bit training where asked)."""
    import torch
    from transformers import AutoModelForCausalLM

    kwargs: dict[str, Any] = {
        "dtype": getattr(torch, plan.load_dtype),
        "attn_implementation": recipe.attn_implementation,
        "trust_remote_code": recipe.trust_remote_code,
    }
    if plan.quantize:
        from transformers import BitsAndBytesConfig

        if plan.quantize == "4bit":
            kwargs["quantization_config"] = BitsAndBytesConfig(
                load_in_4bit=True,
                bnb_4bit_quant_type="nf4",
                bnb_4bit_use_double_quant=True,
                bnb_4bit_compute_dtype=getattr(torch, plan.compute_dtype),
                bnb_4bit_quant_storage=torch.uint8,
            )
        else:
            kwargs["quantization_config"] = BitsAndBytesConfig(load_in_8bit=True)
        kwargs["device_map"] = {"": _device_index()}
    try:
        model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    except OSError as exc:
        raise LtkError(f"cannot load model {path!r}: {exc}") from None
    if plan.quantize:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=recipe.gradient_checkpointing
        )
    return model


def _device_index() -> Any:
    import os

    import torch

    if torch.cuda.is_available():
        return int(os.environ.get("LOCAL_RANK", "0"))
    return "cpu"


def base_dtype(path: str) -> str:
    """The dtype a model folder was saved in (config.json), float32 when it does not say."""
    config = Path(path) / "config.json"
    if config.is_file():
        data = json.loads(config.read_text(encoding="utf-8"))
        value = data.get("dtype") or data.get("torch_dtype") or "float32"
        return value if value in _DTYPES else "float32"
    return "float32"


def save_dtype(recipe: Recipe, base_path: str) -> str:
    return base_dtype(base_path) if recipe.ltk.save_dtype == "auto" else recipe.ltk.save_dtype


def dtypes_by_role(model: Any) -> dict[str, list[str]]:
    """Distinct dtypes of frozen and trainable parameters (stage record, tests)."""
    frozen: set[str] = set()
    trainable: set[str] = set()
    for _, p in model.named_parameters():
        (trainable if p.requires_grad else frozen).add(str(p.dtype).replace("torch.", ""))
    return {"frozen": sorted(frozen), "trainable": sorted(trainable)}


def merged_full_precision(adapter_dir: Path, base_path: str, recipe: Recipe, dtype: str, vocab: int) -> Any:
    """A quantized stage's result: the adapter merged into a full-precision copy of the base."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(
        base_path, dtype=getattr(torch, dtype), trust_remote_code=recipe.trust_remote_code
    )
    if base.get_input_embeddings().weight.shape[0] != vocab:
        base.resize_token_embeddings(vocab, mean_resizing=False)
    return PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()


def require_quantization(s: StageSettings, recipe_file: str) -> None:
    why = check_quantization(s)
    if why:
        raise UsageError(
            f"{recipe_file}: stage {s.stage} asks for {s.quantize} base weights (adapter: {s.adapter}), but {why}\n"
            "    fix: install bitsandbytes on a machine it supports, or use adapter: lora without load_in_4bit/8bit"
        )


def upcast_trainable(model: Any) -> int:
    """Trained parameters in fp32 (the optimizer's master copy) even when the frozen base is bf16: PEFT's
    ``modules_to_save`` copies take the base's dtype. Returns how many tensors were cast."""
    import torch

    cast = 0
    for p in model.parameters():
        if p.requires_grad and p.dtype in (torch.bfloat16, torch.float16):
            p.data = p.data.float()
            cast += 1
    return cast
