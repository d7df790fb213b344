"""Loading a model to evaluate: a path, a hub id or ``embedded:smollm2-135m``; clear errors otherwise."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ltk.errors import LtkError, UsageError


@dataclass
class LoadedModel:
    """A causal LM and its tokenizer, with the name it was loaded from."""

    model: Any
    tokenizer: Any
    name: str

    @property
    def device(self) -> Any:
        return next(self.model.parameters()).device


def pick_device(device: str | None = None) -> str:
    import torch

    if device:
        return device
    if torch.cuda.is_available():
        return "cuda"
    return "cpu"


def load_model(
    name: str | Path, *, device: str | None = None, dtype: str = "auto", trust_remote_code: bool = False
) -> LoadedModel:
    """Load a causal LM + tokenizer. Raises LtkError naming the model and what to check."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ltk.assets import resolve_model

    resolved = resolve_model(str(name))
    path = Path(resolved)
    looks_local = path.exists() or resolved.startswith((".", "/", "~"))
    if looks_local and not path.exists():
        raise UsageError(f"model folder {resolved!r} does not exist; check the path")
    if path.is_dir() and not (path / "config.json").exists():
        raise UsageError(
            f"{resolved} is not a transformers model folder (no config.json); "
            "give the folder that save_pretrained wrote (e.g. runs/<name>/sft/final)"
        )
    target_device = pick_device(device)
    if dtype == "auto":
        # fp32 is the faster choice on CPU (see NOTES.md); bf16 halves memory on GPUs.
        torch_dtype = torch.bfloat16 if target_device.startswith("cuda") else torch.float32
    else:
        torch_dtype = getattr(torch, dtype)
    try:
        tokenizer = AutoTokenizer.from_pretrained(resolved, trust_remote_code=trust_remote_code)
        model = AutoModelForCausalLM.from_pretrained(
            resolved, dtype=torch_dtype, trust_remote_code=trust_remote_code
        )
    except (OSError, ValueError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise LtkError(
            f"cannot load model {resolved!r}: {first}\n"
            "    fix: give a local model folder (config.json + weights + tokenizer), or a hub id "
            "reachable from this machine"
        ) from None
    model.to(target_device)
    model.eval()
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return LoadedModel(model=model, tokenizer=tokenizer, name=resolved)


def as_loaded(model: Any, tokenizer: Any = None, **kwargs: Any) -> LoadedModel:
    """Accept a name/path or an already loaded model object (as training callbacks pass)."""
    if isinstance(model, LoadedModel):
        return model
    if isinstance(model, (str, Path)):
        return load_model(model, **kwargs)
    if tokenizer is None:
        raise UsageError("a loaded model needs its tokenizer too: pass tokenizer=...")
    name = getattr(getattr(model, "config", None), "_name_or_path", "") or type(model).__name__
    return LoadedModel(model=model, tokenizer=tokenizer, name=str(name))
