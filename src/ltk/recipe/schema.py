"""The recipe format: Axolotl-compatible keys plus one ``ltk:`` block, as strict pydantic models.

The top-level keys are Axolotl's own and describe stage 1 (continual pretraining), so that ``axolotl train``
runs a rendered recipe as it is. What Axolotl has no key for (the language, the two stages, the English
mix, evaluation, the vocabulary policy) lives under ``ltk:``; the ltk Axolotl plugin validates that block so
that its keys are not silently dropped. Unknown keys are errors everywhere.

This module imports only pydantic and ltk's light modules (errors, validation, assets): the Axolotl plugin
imports it inside Axolotl's own environment.
"""

from __future__ import annotations

import difflib
from typing import Literal

from pydantic import Field, field_validator, model_validator

from ltk.validation import Strict

PLUGIN_CLASS = "ltk_axolotl.LtkPlugin"
# Axolotl's chat_template names ltk implements (ltk/data/chat_templates holds the shipped ones).
CHAT_TEMPLATES = ("tokenizer_default", "chatml", "llama2", "llama3", "qwen3", "gemma3", "jinja")
SAVE_DTYPES = ("auto", "float32", "bfloat16", "float16")


# ------------------------------------------------------------------------------------------- Axolotl side
class DatasetEntry(Strict):
    """One entry of Axolotl's ``datasets:`` list (the keys ltk writes; others are rejected)."""

    path: str = Field(min_length=1, description="Local file/folder or hub id.")
    type: str = Field(description="Axolotl prompt strategy: completion (text) or chat_template (messages).")
    ds_type: Literal["parquet", "json", "csv", "arrow"] | None = None
    data_files: str | list[str] | None = None
    split: str = "train"
    field: str | None = Field(default=None, description="Text column for type: completion.")
    field_messages: str | None = Field(default=None, description="Messages column for chat_template.")
    roles_to_train: list[str] | None = None
    train_on_eos: Literal["turn", "last", "all", "none"] | None = None


class StageOverrides(Strict):
    """Training settings a stage may set for itself; unset ones fall back to the top-level keys."""

    learning_rate: float | None = Field(default=None, gt=0)
    lr_scheduler: str | None = None
    warmup_ratio: float | None = Field(default=None, ge=0, lt=1)
    micro_batch_size: int | None = Field(default=None, gt=0)
    gradient_accumulation_steps: int | None = Field(default=None, gt=0)
    num_epochs: float | None = Field(default=None, gt=0)
    max_steps: int | None = Field(default=None, gt=0, description="Overrides num_epochs when set.")
    sequence_len: int | None = Field(default=None, gt=0)
    adapter: Literal["lora", "qlora", "full"] | None = Field(
        default=None, description="lora, qlora (LoRA on a 4-bit base) or full fine-tuning."
    )
    lora_r: int | None = Field(default=None, gt=0)
    lora_alpha: int | None = Field(default=None, gt=0)
    lora_dropout: float | None = Field(default=None, ge=0, lt=1)
    lora_modules_to_save: list[str] | None = Field(
        default=None, description="Whole modules trained next to LoRA ([] for none), e.g. embed_tokens."
    )


class CptStage(StageOverrides):
    """Stage 1: continual pretraining on the mixed corpus (``text``), packed."""

    enabled: bool = True
    data: str = Field(min_length=1, description="Folder of the corpus parquet parts (column text).")
    merge: bool = Field(
        default=True, description="Merge the adapter into the weights before stage 2 (else keep training it)."
    )


class SftStage(StageOverrides):
    """Stage 2: instruction tuning on one translated tier (``messages``), loss on assistant turns only."""

    enabled: bool = True
    tier: int = Field(gt=0, description="Which instruction tier to train on (its size).")
    data: str = Field(min_length=1, description="The tier's train.jsonl.")
    start_from: Literal["cpt", "base"] = Field(default="cpt", description="Stage 1's result, or the base.")
    assistant_only_loss: bool = True
    save: Literal["merged", "adapter"] = Field(default="merged", description="How the final model is saved.")


class PrefStage(StageOverrides):
    """Stage 3 (off by default): preference tuning (DPO) against code-switching, on pairs ltk builds itself.

    For prompts of the training tier whose reference answer is in the target language (never the held-out
    prompts), ``samples_per_prompt`` answers are sampled from the SFT model (seeded) and scored with the
    code-switch detector; a pair is kept when one answer stays in the language and another switches (the
    reference answer stands in as the chosen side when no sample stays). DPO then trains a new LoRA adapter
    on the SFT model, which is also the reference model.
    """

    enabled: bool = False
    data: str | None = Field(
        default=None,
        description="Instruction file whose prompts are sampled (default: the sft stage's tier).",
    )
    max_prompts: int = Field(default=512, gt=0, description="Prompts sampled, at most (seeded choice).")
    samples_per_prompt: int = Field(
        default=4, ge=2, description="Answers sampled from the SFT model per prompt."
    )
    sampling_batch: int = Field(
        default=8,
        gt=0,
        description="Prompts sampled together (seeded per batch: changing it draws other answers).",
    )
    temperature: float = Field(default=1.0, gt=0, description="Sampling temperature of those answers.")
    top_p: float = Field(default=1.0, gt=0, le=1)
    max_new_tokens: int = Field(default=128, gt=0, description="Longest sampled answer, in tokens.")
    chosen_max_switch: float = Field(
        default=0.1, ge=0, lt=0.5, description="Largest share of non-target words a chosen answer may have."
    )
    rejected_min_switch: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="A rejected answer has more than this share of non-target words (0.5: it code-switches).",
    )
    reference_as_chosen: bool = Field(
        default=True,
        description="Use the tier's reference answer as chosen when no sample stays in the language.",
    )
    judge_url: str | None = Field(
        default=None,
        description="OpenAI-compatible judge endpoint: ranks the answers that stay in the language.",
    )
    judge_model: str | None = Field(
        default=None, description="The judge's model name (a local path without judge_url)."
    )
    judge_api_key_env: str = Field(
        default="OPENAI_API_KEY", description="Environment variable holding its key."
    )
    judge_min_score: float = Field(
        default=0.0, ge=0, description="A chosen answer needs at least this judge mean (0-3 scale)."
    )
    beta: float = Field(
        default=0.1, gt=0, description="DPO's beta: how far the policy may move from the SFT model."
    )
    loss_type: Literal["sigmoid", "ipo", "hinge", "robust"] = Field(
        default="sigmoid", description="DPO loss (TRL)."
    )
    save: Literal["merged", "adapter"] = Field(default="merged", description="How the final model is saved.")
    # DPO wants a much smaller step than SFT (alignment-handbook's LoRA DPO recipes: 5e-6), and its own adapter.
    learning_rate: float | None = Field(default=5e-6, gt=0)
    num_epochs: float | None = Field(default=1.0, gt=0)
    lora_r: int | None = Field(default=16, gt=0)
    lora_alpha: int | None = Field(default=32, gt=0)
    lora_modules_to_save: list[str] | None = Field(default_factory=list)

    @model_validator(mode="after")
    def _judge_complete(self) -> PrefStage:
        if self.judge_url and not self.judge_model:
            raise ValueError("judge_url needs judge_model (the model name the endpoint serves)")
        if self.judge_url and not self.judge_url.startswith(("http://", "https://")):
            raise ValueError(f"judge_url {self.judge_url!r} must start with http:// or https://")
        return self


class Stages(Strict):
    cpt: CptStage
    sft: SftStage
    pref: PrefStage = Field(default_factory=PrefStage)


class EnglishMix(Strict):
    ratio: float = Field(ge=0, lt=1, description="English share of pretraining tokens.")
    premixed: bool = Field(
        default=True, description="The corpus already holds the English share (ltk build-langpack mixes it)."
    )
    data: str | None = Field(default=None, description="English parquet folder, used when not premixed.")

    @model_validator(mode="after")
    def _data_when_not_premixed(self) -> EnglishMix:
        if not self.premixed and self.ratio > 0 and not self.data:
            raise ValueError("premixed: false with ratio > 0 needs data: the English parquet folder")
        return self


class EvalSettings(Strict):
    enabled: bool = True
    heldout_target: str | None = Field(default=None, description="Held-out target-language parquet folder.")
    heldout_english: str | None = Field(default=None, description="Held-out English parquet folder.")
    prompts: str | None = Field(default=None, description="Held-out prompts (jsonl) for generation checks.")
    max_documents: int = Field(default=200, gt=0)
    max_prompts: int = Field(default=50, gt=0)
    metrics: list[str] = Field(default_factory=lambda: ["bpb"])


class Vocabulary(Strict):
    """keep: the base vocabulary (the study's advice). extend: add target-language pieces, train new rows."""

    policy: Literal["keep", "extend"] = "keep"
    extend_size: int = Field(default=8_000, gt=0, description="New pieces to add when extending.")
    training_documents: int = Field(default=50_000, gt=0, description="Corpus documents to train it on.")


class LtkBlock(Strict):
    """What Axolotl has no key for. Validated by ltk and, under Axolotl, by the ltk plugin."""

    langpack: str = Field(min_length=1, description="Langpack code the recipe was rendered from.")
    langpack_version: int = Field(ge=1)
    language: str = Field(description="FLORES-200 code of the target language, e.g. nya_Latn.")
    language_name: str = ""
    build_dir: str = Field(min_length=1, description="The langpack's build folder, e.g. build/ny.")
    token_budget: int = Field(gt=0, description="Target-language tokens budgeted by the langpack.")
    english: EnglishMix
    stages: Stages
    eval: EvalSettings = Field(default_factory=EvalSettings)
    vocabulary: Vocabulary = Field(default_factory=Vocabulary)
    save_dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        default="auto", description="dtype of merged/full models saved by each stage; auto: the base's dtype."
    )


# ------------------------------------------------------------------------------------------- the recipe
class Recipe(Strict):
    """A whole recipe. Top-level keys are Axolotl's and describe stage 1; ``ltk`` holds the rest."""

    base_model: str = Field(min_length=1, description="Hub id, local folder or embedded:smollm2-135m.")
    tokenizer_config: str | None = None
    trust_remote_code: bool = False
    plugins: list[str] = Field(default_factory=lambda: [PLUGIN_CLASS])

    datasets: list[DatasetEntry] = Field(min_length=1)
    dataset_prepared_path: str | None = None
    val_set_size: float = Field(default=0.0, ge=0, lt=1)
    sequence_len: int = Field(default=1024, gt=0)
    sample_packing: bool = True
    pad_to_sequence_len: bool = True
    chat_template: str | None = Field(
        default=None,
        description="SFT chat format: tokenizer_default (the base's own; ChatML if it has none), chatml, llama2, "
        "llama3, qwen3, gemma3, or jinja with chat_template_jinja.",
    )
    chat_template_jinja: str | None = Field(default=None, description="A .jinja file or the template text.")
    eot_tokens: list[str] | None = Field(
        default=None,
        description="End-of-turn tokens to train and stop on (default: detected from the template).",
    )

    adapter: Literal["lora", "qlora"] | None = Field(
        default="lora", description="lora, qlora (LoRA on a 4-bit base, needs load_in_4bit) or null for full."
    )
    load_in_4bit: bool = Field(default=False, description="Frozen base weights in 4-bit NF4 (bitsandbytes).")
    load_in_8bit: bool = Field(default=False, description="Frozen base weights in 8-bit (bitsandbytes).")
    lora_r: int = Field(default=64, gt=0)
    lora_alpha: int = Field(default=128, gt=0)
    lora_dropout: float = Field(default=0.0, ge=0, lt=1)
    lora_target_modules: list[str] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    )
    lora_modules_to_save: list[str] | None = None
    lora_mlp_kernel: bool = False
    lora_qkv_kernel: bool = False
    lora_o_kernel: bool = False

    learning_rate: float = Field(default=1e-4, gt=0)
    lr_scheduler: str = "cosine"
    warmup_ratio: float = Field(default=0.03, ge=0, lt=1)
    weight_decay: float = Field(default=0.0, ge=0)
    optimizer: str = "adamw_torch"
    max_grad_norm: float = Field(default=1.0, gt=0)
    micro_batch_size: int = Field(default=4, gt=0)
    gradient_accumulation_steps: int = Field(default=8, gt=0)
    num_epochs: float = Field(default=1.0, gt=0)
    max_steps: int | None = Field(default=None, gt=0)
    gradient_checkpointing: bool = False

    output_dir: str = Field(min_length=1, description="Run folder; stages write <output_dir>/cpt and /sft.")
    logging_steps: int = Field(default=10, gt=0)
    save_steps: int = Field(default=200, gt=0)
    save_total_limit: int | None = Field(default=2, gt=0)
    seed: int = 0

    bf16: bool | Literal["auto", "full"] = Field(
        default="auto",
        description="bf16 autocast with fp32 master weights (full: pure bf16 weights and optimizer state). auto: on "
        "GPUs with bf16 and on CPUs with native bf16 matmuls (AMX, AVX512-BF16); else fp32. Frozen LoRA base "
        "weights are loaded in bf16 on GPUs whenever bf16 is on.",
    )
    fp16: bool = False
    tf32: bool = False
    attn_implementation: Literal["sdpa", "eager", "flash_attention_2"] = "sdpa"
    torch_compile: bool = Field(
        default=False,
        description="torch.compile the model (inductor): fuses elementwise work; on SmolLM2-135M, 2-core CPU, "
        "same tokens/s and ~15% less peak memory after 1.5-3 min of compiling. For long runs.",
    )

    use_tensorboard: bool = False
    use_wandb: bool = False
    wandb_project: str | None = None
    deepspeed: str | None = Field(default=None, description="DeepSpeed JSON config, passed through.")
    fsdp: list[str] | None = None
    fsdp_config: dict | None = None

    ltk: LtkBlock

    @field_validator("chat_template")
    @classmethod
    def _known_template(cls, value: str | None) -> str | None:
        if value is not None and value not in CHAT_TEMPLATES:
            close = difflib.get_close_matches(value, CHAT_TEMPLATES, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ValueError(f"unknown chat template {value!r}: {hint}use one of {', '.join(CHAT_TEMPLATES)}")
        return value

    @model_validator(mode="after")
    def _plugin_listed(self) -> Recipe:
        if PLUGIN_CLASS not in self.plugins:
            raise ValueError(f"plugins must list {PLUGIN_CLASS} (it validates the ltk: block under Axolotl)")
        if self.bf16 in (True, "full") and self.fp16:
            raise ValueError("bf16 and fp16 cannot both be on")
        if self.chat_template == "jinja" and not self.chat_template_jinja:
            raise ValueError(
                "chat_template: jinja needs chat_template_jinja (a .jinja file or the template text)"
            )
        if self.load_in_4bit and self.load_in_8bit:
            raise ValueError("load_in_4bit and load_in_8bit cannot both be true")
        if self.adapter == "qlora" and not self.load_in_4bit:
            raise ValueError("adapter: qlora needs load_in_4bit: true (as in Axolotl)")
        if (self.load_in_4bit or self.load_in_8bit) and self.adapter is None:
            raise ValueError(
                "load_in_4bit/load_in_8bit train adapters on frozen quantized weights: set adapter"
            )
        return self


STAGE_NAMES = ("cpt", "sft", "pref")
