"""A memory plan per device: weights, gradients, optimizer states and activations, before anything loads.

The model is built on the ``meta`` device from its config (no weights read), its parameters counted by
role, and the peak of one training step estimated for the stage's plan (:mod:`ltk.train.weights`):

- weights: every parameter at its load dtype; 4-bit linears at 0.5 byte + ~3% for NF4 block scales;
- gradients and AdamW states (two moments) for the trained parameters only: fp32 (bf16 under ``bf16: full``);
- activations kept for backward, per token and decoder layer: about ``10 x hidden + 5 x intermediate``
  values (norms, q/k/v/o, rotary, the gated MLP) in the compute dtype, plus the logits in fp32 for the loss
  (logits, log-softmax and its gradient: 3 x vocab per token). Gradient checkpointing keeps one hidden state
  per layer and recomputes one layer at a time.

LoRA on a CPU adds a measured term (``CPU_LORA_EXTRA``). Checked against measured peaks on a CPU (``benchmarks/memory_plan.py``, results in
``benchmarks/results/memory_plan.md``); on a GPU the CUDA context and allocator add a few hundred MB,
which the plan adds as a fixed overhead.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

GIB = 1024**3
_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
CUDA_OVERHEAD = 600 * 1024**2  # CUDA context + allocator slack, measured typical (not modelled)
ACT_HIDDEN = 10  # values kept per token and layer, in units of hidden_size
ACT_INTERMEDIATE = 5  # ... and of intermediate_size
LOGIT_COPIES = 3  # fp32 logits, log-softmax, and its gradient
# Measured, not modelled: LoRA runs on a CPU hold about 0.8x the frozen weights more than the terms above
# (benchmarks/results/memory_plan.md: SmolLM2-135M, r16 and r64, with and without checkpointing; full
# fine-tuning does not show it). Applied on CPUs only, where it was measured.
CPU_LORA_EXTRA = 0.8


@dataclass(frozen=True)
class ParamCounts:
    total: int
    linear_in_layers: int  # the quantizable part (attention and MLP projections)
    embeddings: int  # input embeddings and untied output layer
    lora: int  # adapter parameters for the stage's r and target modules
    modules_to_save: int  # whole modules trained next to LoRA

    @property
    def other(self) -> int:
        return self.total - self.linear_in_layers - self.embeddings


@dataclass(frozen=True)
class MemoryPlan:
    weights: int
    gradients: int
    optimizer: int
    activations: int
    activations_checkpointed: int
    overhead: int
    gradient_checkpointing: bool
    device_bytes: int | None = None  # what the device has (GPU), None on a CPU

    @property
    def peak(self) -> int:
        acts = self.activations_checkpointed if self.gradient_checkpointing else self.activations
        return self.weights + self.gradients + self.optimizer + acts + self.overhead

    def as_dict(self) -> dict[str, Any]:
        data = {k: _gib(v) for k, v in asdict(self).items() if isinstance(v, int) and not isinstance(v, bool)}
        data["gradient_checkpointing"] = self.gradient_checkpointing
        data["peak_gib"] = _gib(self.peak)
        if self.device_bytes:
            data["fits"] = self.peak <= self.device_bytes
        return {k.replace("device_bytes", "device_gib"): v for k, v in data.items()}


def _gib(n: int) -> float:
    return round(n / GIB, 3)


def count_parameters(config: Any, s: Any) -> ParamCounts:
    """Parameters by role, from a config on the meta device (nothing is allocated)."""
    import torch
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    targets = set(s.lora_target_modules)
    linear = lora = 0
    seen: set[int] = set()
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and ".layers." in name:
            linear += module.weight.numel() + (module.bias.numel() if module.bias is not None else 0)
            if name.rsplit(".", 1)[-1] in targets:
                lora += s.lora_r * (module.in_features + module.out_features)
    embeddings = 0
    for module in (model.get_input_embeddings(), model.get_output_embeddings()):
        if module is not None and id(module.weight) not in seen:
            seen.add(id(module.weight))
            embeddings += module.weight.numel()
    total = sum(p.numel() for p in model.parameters())
    saved = 0
    names = set(s.lora_modules_to_save or [])
    if "embed_tokens" in names:
        saved += model.get_input_embeddings().weight.numel()
    out = model.get_output_embeddings()
    if "lm_head" in names and out is not None:
        tied = out.weight is model.get_input_embeddings().weight
        saved += 0 if (tied and "embed_tokens" in names) else out.weight.numel()
    return ParamCounts(total, linear, embeddings if embeddings <= total else total, lora, saved)


def estimate(config: Any, s: Any, plan: Any, *, gradient_checkpointing: bool, cuda: bool) -> MemoryPlan:
    """The peak memory of one training step of stage ``s`` under the weights ``plan``, per device."""
    counts = count_parameters(config, s)
    load = _BYTES[plan.load_dtype]
    if plan.quantize == "4bit":
        weights = int(counts.linear_in_layers * 0.5 * 1.03) + (counts.total - counts.linear_in_layers) * load
    elif plan.quantize == "8bit":
        weights = int(counts.linear_in_layers * 1.02) + (counts.total - counts.linear_in_layers) * load
    else:
        weights = counts.total * load
    if s.adapter == "full":
        trained = counts.total
        state = _BYTES[plan.trainable_dtype]
    else:
        trained = counts.lora + counts.modules_to_save
        state = 4
        if not cuda and not plan.quantize:  # measured for full-precision LoRA only
            weights += int(CPU_LORA_EXTRA * weights)
        weights += trained * 4  # the adapter and the trained copies of whole modules
    gradients = trained * state
    optimizer = trained * state * 2
    hidden = config.hidden_size
    inter = getattr(config, "intermediate_size", 4 * hidden)
    layers = config.num_hidden_layers
    tokens = s.micro_batch_size * s.sequence_len
    compute = _BYTES[plan.compute_dtype]
    per_layer = tokens * (ACT_HIDDEN * hidden + ACT_INTERMEDIATE * inter) * compute
    logits = tokens * config.vocab_size * 4 * LOGIT_COPIES
    activations = layers * per_layer + logits
    checkpointed = layers * tokens * hidden * compute + per_layer + logits
    device = None
    if cuda:
        import torch

        device = torch.cuda.get_device_properties(0).total_memory
    return MemoryPlan(
        weights=weights,
        gradients=gradients,
        optimizer=optimizer,
        activations=activations,
        activations_checkpointed=checkpointed,
        overhead=CUDA_OVERHEAD if cuda else 0,
        gradient_checkpointing=gradient_checkpointing,
        device_bytes=device,
    )


def advice(plan: MemoryPlan, s: Any) -> list[str]:
    """What to change when the plan does not fit the device."""
    if plan.device_bytes is None or plan.peak <= plan.device_bytes:
        return []
    tips = []
    if not plan.gradient_checkpointing and plan.activations > plan.activations_checkpointed:
        saved = plan.activations - plan.activations_checkpointed
        tips.append(f"gradient_checkpointing: true (saves ~{_gib(saved)} GiB)")
    if s.micro_batch_size > 1:
        tips.append(
            f"micro_batch_size: {max(1, s.micro_batch_size // 2)} with gradient_accumulation_steps: "
            f"{s.gradient_accumulation_steps * 2} (same tokens per step, about half the activations)"
        )
    if s.adapter != "qlora" and not s.quantize:
        tips.append("adapter: qlora with load_in_4bit: true (frozen weights in 4 bits: about 1/4 of bf16)")
    return tips


def model_config(path: str, trust_remote_code: bool = False) -> Any:
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
