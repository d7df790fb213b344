"""The two training stages on TRL's SFTTrainer.

Stage 1 (cpt): the corpus' ``text``, tokenized with EOS after every document and packed wrapped with
document boundaries kept (see :mod:`ltk.train.packing`); LoRA with the embeddings and output layer trainable
(or full fine-tuning). Stage 2 (sft): the tier's ``messages``, loss on assistant turns only, starting from
stage 1's merged model (new adapter) or its adapter (trained further). Each stage writes checkpoints to
``<output_dir>/<stage>/checkpoint-N`` and its result to ``<output_dir>/<stage>/final`` (renamed into place
when complete, with ``ltk_stage.json``); the same code runs under ``accelerate launch`` / ``torchrun``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ltk.errors import UsageError
from ltk.hardware import cpu_has_native_bf16
from ltk.io import json_text, library_versions, replace_dir, sha256_file, temp_sibling
from ltk.recipe.load import StageSettings
from ltk.recipe.schema import Recipe

log = logging.getLogger(__name__)
STAGE_FILE = "ltk_stage.json"
VOCAB_FILE = "ltk_vocab.json"


@dataclass
class RunContext:
    recipe: Recipe
    recipe_file: str
    base_model: str  # resolved: a folder or hub id
    resume: bool = False
    report_to: list[str] = field(default_factory=list)
    trace_batches: bool = False


# ----------------------------------------------------------------------------------------------- helpers
def trainer_class(plain_loss: bool) -> Any:
    """SFTTrainer, or a subclass computing the loss through the model's own forward.

    TRL's fused LM head reads ``lm_head.weight`` directly, which skips PEFT's trainable-token rows on the
    output side (and fails on its wrapper): with new vocabulary rows, the plain forward is the correct one.
    On CPU the plain forward is also the faster one: the fused head saves GPU memory by recomputing the
    LM head in backward, which cost ~8% of a SmolLM2-135M step here (torch.profiler).
    """
    import torch
    from transformers import Trainer
    from trl import SFTTrainer

    if not plain_loss and torch.cuda.is_available():
        return SFTTrainer

    class PlainLossSFTTrainer(SFTTrainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            # use_cache=False keeps packed documents apart (the mask is built from position_ids only then)
            return Trainer.compute_loss(
                self, model, {**inputs, "use_cache": False}, return_outputs, num_items_in_batch
            )

    return PlainLossSFTTrainer


def resolve_bf16(recipe: Recipe) -> bool:
    """``bf16: auto`` -> bf16 autocast on GPUs that support it and on CPUs with native bf16 matmuls.

    On such a CPU (AMX) a SmolLM2-135M training step runs ~1.5-1.9x faster in bf16 autocast than in fp32
    (benchmarks/cpt_throughput.py); master weights and optimizer state stay fp32 either way.
    """
    import torch

    if recipe.bf16 == "full":
        return True
    if isinstance(recipe.bf16, bool):
        return recipe.bf16
    if recipe.fp16:  # the user asked for fp16 autocast: auto does not add bf16 to it
        return False
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    return cpu_has_native_bf16()


def precision(recipe: Recipe) -> str:
    """What the stages compute in, in words (dry-run plan, stage record, summary)."""
    flags = _device_flags(recipe)
    return "bf16 autocast" if flags["bf16"] else "fp16 autocast" if flags["fp16"] else "fp32"


def _device_flags(recipe: Recipe) -> dict[str, Any]:
    """Precision and device flags. SFTConfig defaults to bf16=True: decide here from the recipe."""
    import torch

    cuda = torch.cuda.is_available()
    return {
        "use_cpu": not cuda,
        "bf16": resolve_bf16(recipe),
        "fp16": bool(recipe.fp16 and cuda),
        "tf32": True if (recipe.tf32 and cuda) else None,
    }


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def last_checkpoint(output_dir: Path) -> Path | None:
    ckpts = [p for p in output_dir.glob("checkpoint-*") if p.name.split("-")[-1].isdigit()]
    return max(ckpts, key=lambda p: int(p.name.split("-")[-1])) if ckpts else None


def trainer_kwargs(ctx: RunContext, s: StageSettings) -> dict[str, Any]:
    """The TrainingArguments every stage passes (SFTConfig, and DPOConfig for stage 3), from its settings."""
    recipe = ctx.recipe
    return dict(
        output_dir=s.output_dir,
        per_device_train_batch_size=s.micro_batch_size,
        gradient_accumulation_steps=s.gradient_accumulation_steps,
        learning_rate=s.learning_rate,
        lr_scheduler_type=s.lr_scheduler,
        warmup_steps=s.warmup_ratio,  # below 1: a ratio of the total steps
        weight_decay=s.weight_decay,
        optim=s.optimizer,
        max_grad_norm=s.max_grad_norm,
        num_train_epochs=s.num_epochs,
        max_steps=s.max_steps or -1,
        logging_steps=recipe.logging_steps,
        logging_first_step=True,
        save_steps=recipe.save_steps,
        save_total_limit=recipe.save_total_limit,
        seed=recipe.seed,
        data_seed=recipe.seed,
        gradient_checkpointing=recipe.gradient_checkpointing,
        torch_compile=recipe.torch_compile,
        report_to=ctx.report_to or "none",
        max_length=s.sequence_len,
        deepspeed=recipe.deepspeed,
        fsdp=" ".join(recipe.fsdp) if recipe.fsdp else None,
        fsdp_config=recipe.fsdp_config,
        ddp_find_unused_parameters=False,
        **_device_flags(recipe),
    )


def training_args(ctx: RunContext, s: StageSettings, **extra: Any) -> Any:
    from trl import SFTConfig

    return SFTConfig(**trainer_kwargs(ctx, s), **extra)


def lora_config(s: StageSettings, model_config: Any, *, new_token_ids: list[int] | None = None) -> Any:
    from peft import LoraConfig

    kwargs: dict[str, Any] = {}
    whole_embeddings = "embed_tokens" in (s.lora_modules_to_save or [])
    if new_token_ids and not whole_embeddings:
        # Embeddings otherwise frozen: train only the new rows (PEFT keeps tied input/output rows tied; an
        # untied output layer needs its own rows trained, or the model could never predict the new tokens).
        rows = {"embed_tokens": list(new_token_ids)}
        if not getattr(model_config, "tie_word_embeddings", False):
            rows["lm_head"] = list(new_token_ids)
        kwargs["trainable_token_indices"] = rows
    elif s.lora_modules_to_save:
        # Whole matrices, new rows included: an extended vocabulary trains what a kept one would.
        kwargs["modules_to_save"] = list(s.lora_modules_to_save)
        if getattr(model_config, "tie_word_embeddings", False):
            kwargs["ensure_weight_tying"] = True
    return LoraConfig(
        r=s.lora_r,
        lora_alpha=s.lora_alpha,
        lora_dropout=s.lora_dropout,
        target_modules=list(s.lora_target_modules),
        task_type="CAUSAL_LM",
        **kwargs,
    )


def weights_plan(recipe: Recipe, s: StageSettings) -> Any:
    import torch

    from ltk.train.weights import plan_weights

    return plan_weights(recipe, s, cuda=torch.cuda.is_available(), bf16=resolve_bf16(recipe))


def load_model(path: str, recipe: Recipe, s: StageSettings) -> Any:
    """The stage's model: fp32 master weights, bf16 frozen weights (LoRA on GPUs) or quantized (qlora)."""
    from ltk.train.weights import load_for_stage

    return load_for_stage(path, recipe, weights_plan(recipe, s))


def load_tokenizer(path: str, recipe: Recipe) -> Any:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path, trust_remote_code=recipe.trust_remote_code)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def _callbacks(ctx: RunContext, s: StageSettings) -> list[Any]:
    from ltk.train.progress import LossLog, StepProgress

    return [LossLog(Path(s.output_dir) / "log.jsonl"), StepProgress(s.stage), *eval_callbacks(ctx, s)]


def eval_callbacks(ctx: RunContext, s: StageSettings) -> list[Any]:
    """ltk's evaluation callback when the recipe enables eval: cheap offline metrics at the end of the
    stage, written to ``<output_dir>/eval/<stage>.json``."""
    settings = ctx.recipe.ltk.eval
    if not settings.enabled:
        return []
    from ltk.evaluate.callbacks import LtkEvalCallback
    from ltk.evaluate.metrics import EvalOptions

    return [
        LtkEvalCallback(
            ctx.recipe.ltk.build_dir,
            ctx.recipe.output_dir,
            stage=s.stage,
            metrics=tuple(settings.metrics),
            options=EvalOptions(max_docs=settings.max_documents, max_prompts=settings.max_prompts),
        )
    ]


def make_trainer(trainer_cls: Any, **kwargs: Any) -> Any:
    """A trainer that reports through ltk's one-line step log instead of printing raw log dicts."""
    from ltk.train.progress import use_ltk_progress

    return use_ltk_progress(trainer_cls(**kwargs))


def save_final(
    trainer: Any,
    tokenizer: Any,
    s: StageSettings,
    ctx: RunContext,
    meta: dict[str, Any],
    *,
    base_path: str,
    eos_ids: list[int] | None = None,
) -> Path:
    """Write ``<stage>/final`` atomically on the main process (merged weights or the adapter).

    Merged and full models are saved in the base's dtype (``ltk.save_dtype``); a quantized base gets the
    adapter merged into a full-precision copy. ``eos_ids`` (the end-of-turn ids after SFT) go into
    ``generation_config.json`` so that generation stops where the model learnt to end a turn.
    """
    import torch

    from ltk.train.weights import dtypes_by_role, merged_full_precision, save_dtype

    out = Path(s.output_dir) / "final"
    if trainer.is_world_process_zero():
        tmp = temp_sibling(out)
        shutil.rmtree(tmp, ignore_errors=True)
        model = trainer.model
        weights = dtypes_by_role(model)
        is_peft = hasattr(model, "peft_config")
        dtype = save_dtype(ctx.recipe, base_path)
        if is_peft and s.save == "merged" and s.quantize:
            adapter_tmp = temp_sibling(out.with_name("adapter"))
            model.save_pretrained(adapter_tmp)
            model = merged_full_precision(adapter_tmp, base_path, ctx.recipe, dtype, len(tokenizer))
            shutil.rmtree(adapter_tmp, ignore_errors=True)
            saved_as = "merged"
        elif is_peft and s.save == "merged":
            model = model.merge_and_unload()
            saved_as = "merged"
        else:
            saved_as = "adapter" if is_peft else "full"
        if saved_as != "adapter":
            model = model.to(getattr(torch, dtype))
        if eos_ids:
            model.generation_config.eos_token_id = eos_ids if len(eos_ids) > 1 else eos_ids[0]
            if model.generation_config.pad_token_id is None:
                model.generation_config.pad_token_id = tokenizer.pad_token_id
        model.save_pretrained(tmp)
        if eos_ids and saved_as == "adapter":
            model.generation_config.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        files = sorted(p for p in tmp.rglob("*") if p.is_file())
        record = {
            "stage": s.stage,
            "saved_as": saved_as,
            "saved_dtype": None if saved_as == "adapter" else dtype,
            "weights_in_training": weights,
            "settings": s.as_dict(),
            "recipe": ctx.recipe_file,
            "langpack": ctx.recipe.ltk.langpack,
            "langpack_version": ctx.recipe.ltk.langpack_version,
            "seed": ctx.recipe.seed,
            "global_step": trainer.state.global_step,
            "world_size": trainer.args.world_size,
            "distributed": str(trainer.accelerator.distributed_type.value),
            "precision": precision(ctx.recipe),
            "versions": library_versions(
                "ltk", "torch", "transformers", "trl", "peft", "datasets", "accelerate", "bitsandbytes"
            ),
            "files": {str(p.relative_to(tmp)): sha256_file(p) for p in files},
            **meta,
        }
        (tmp / STAGE_FILE).write_text(json_text(record), encoding="utf-8")
        replace_dir(tmp, out)
    trainer.accelerator.wait_for_everyone()
    return out


def _train(trainer: Any, s: StageSettings, ctx: RunContext) -> dict[str, Any]:
    ckpt = last_checkpoint(Path(s.output_dir)) if ctx.resume else None
    if ckpt is not None and is_main_process():
        log.info(f"{s.stage}: resuming from {ckpt}")
    start = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=str(ckpt) if ckpt else None)
    return {
        "train_loss": result.training_loss,
        "train_seconds": round(time.perf_counter() - start, 2),
        "resumed_from": str(ckpt) if ckpt else None,
    }


# ------------------------------------------------------------------------------------------ vocabulary
def prepare_vocabulary(ctx: RunContext, corpus_files: list[Path]) -> tuple[str, list[int]]:
    """The tokenizer folder to train with, and the ids of new pieces ([] when the vocabulary is kept)."""
    vocab = ctx.recipe.ltk.vocabulary
    if vocab.policy == "keep":
        return ctx.base_model, []
    from accelerate import PartialState

    from ltk.train.vocab import corpus_texts, extend_tokenizer

    folder = Path(ctx.recipe.output_dir) / "tokenizer"
    with PartialState().main_process_first():
        if not (folder / VOCAB_FILE).is_file() and is_main_process():
            base_tok = load_tokenizer(ctx.base_model, ctx.recipe)
            texts = corpus_texts(corpus_files, vocab.training_documents)
            extended, new_ids = extend_tokenizer(base_tok, texts, vocab.extend_size)
            tmp = temp_sibling(folder)
            shutil.rmtree(tmp, ignore_errors=True)
            extended.save_pretrained(tmp)
            (tmp / VOCAB_FILE).write_text(
                json.dumps({"base_size": len(base_tok), "new_ids": new_ids, "documents": len(texts)}) + "\n"
            )
            replace_dir(tmp, folder)
            log.info(f"vocabulary: {len(new_ids)} new pieces from {len(texts)} documents -> {folder}")
    new_ids = json.loads((folder / VOCAB_FILE).read_text())["new_ids"]
    return str(folder), new_ids


# ------------------------------------------------------------------------------------------- stage 1
def _peft_ready(trainer: Any) -> None:
    """Trained parameters in fp32 even on a bf16 frozen base (see :func:`ltk.train.weights.upcast_trainable`)."""
    from ltk.train.weights import upcast_trainable

    upcast_trainable(trainer.model)


def run_cpt(ctx: RunContext, s: StageSettings) -> Path:
    from accelerate import PartialState

    from ltk.train.data import load_corpus
    from ltk.train.packing import PackedCollator, tokenize_and_pack
    from ltk.train.preflight import parquet_files

    recipe = ctx.recipe
    files = parquet_files(s.data)
    tok_path, new_ids = prepare_vocabulary(ctx, files)
    tokenizer = load_tokenizer(tok_path, recipe)
    model = load_model(ctx.base_model, recipe, s)
    if new_ids:
        from ltk.train.vocab import init_new_embeddings

        init_new_embeddings(model, load_tokenizer(ctx.base_model, recipe), tokenizer, new_ids)
    with PartialState().main_process_first():
        dataset = load_corpus(recipe, files)
        packed = tokenize_and_pack(dataset, tokenizer, s.sequence_len)
    from ltk.train.budget import plan_steps

    budget = plan_steps(recipe, s, packed_rows=len(packed), world_size=_world_size())
    args = training_args(
        ctx,
        s,
        packing=False,  # packed above (wrapped, boundaries kept)
        padding_free=False,
        dataset_kwargs={"skip_prepare_dataset": True},
    )
    peft_config = lora_config(s, model.config, new_token_ids=new_ids) if s.adapter != "full" else None
    trace = Path(s.output_dir) / "trace" if ctx.trace_batches else None
    trainer = make_trainer(
        trainer_class(plain_loss=bool(new_ids)),
        model=model,
        args=args,
        train_dataset=packed,
        data_collator=PackedCollator(pad_token_id=tokenizer.pad_token_id, trace_dir=trace),
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=_callbacks(ctx, s),
    )
    _peft_ready(trainer)
    info = _train(trainer, s, ctx)
    meta = {
        "base_model": ctx.base_model,
        "documents": len(dataset),
        "packed_rows": len(packed),
        "budget": budget.as_dict(),
        "weights": weights_plan(recipe, s).describe(),
        "new_token_ids": len(new_ids),
        "tokenizer": tok_path,
        **info,
    }
    return save_final(trainer, tokenizer, s, ctx, meta, base_path=ctx.base_model)


def _world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


# ------------------------------------------------------------------------------------------- stage 2
def _start_of_sft(ctx: RunContext, s: StageSettings) -> tuple[Any, Any, bool, str, str]:
    """Model, tokenizer, whether the model already carries a trainable adapter, where it came from, and
    the full-precision weights under it (for saving)."""
    recipe = ctx.recipe
    if recipe.ltk.stages.sft.start_from == "base":
        return (
            load_model(ctx.base_model, recipe, s),
            load_tokenizer(ctx.base_model, recipe),
            False,
            ctx.base_model,
            ctx.base_model,
        )
    cpt_final = Path(recipe.output_dir) / "cpt" / "final"
    record = json.loads((cpt_final / STAGE_FILE).read_text())
    tokenizer = load_tokenizer(str(cpt_final), recipe)
    if record["saved_as"] in ("merged", "full"):
        return load_model(str(cpt_final), recipe, s), tokenizer, False, str(cpt_final), str(cpt_final)
    # Stage 1 kept its adapter: load the base (resized if the vocabulary grew) and train that adapter on.
    from peft import PeftModel

    model = load_model(ctx.base_model, recipe, s)
    if len(tokenizer) != model.get_input_embeddings().weight.shape[0]:
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    model = PeftModel.from_pretrained(model, str(cpt_final), is_trainable=True)
    return model, tokenizer, True, f"{ctx.base_model} + adapter {cpt_final}", ctx.base_model


def sft_dataset(tokenizer: Any, fmt: Any, conversations: list[list[dict]], max_length: int) -> Any:
    """Tokenized conversations with role-masked labels (see :mod:`ltk.train.chat`)."""
    import datasets

    from ltk.train.chat import tokenize_conversation

    rows = [tokenize_conversation(tokenizer, fmt, m, max_length) for m in conversations]
    return datasets.Dataset.from_dict(
        {"input_ids": [r["input_ids"] for r in rows], "labels": [r["labels"] for r in rows]}
    )


def run_sft(ctx: RunContext, s: StageSettings) -> Path:
    from ltk.train.chat import add_format_tokens, chat_format, check_renders, eot_token_ids
    from ltk.train.data import load_messages

    recipe = ctx.recipe
    conversations = load_messages(s.data)["messages"]
    model, tokenizer, has_adapter, started_from, full_weights = _start_of_sft(ctx, s)
    fmt = chat_format(tokenizer, recipe.chat_template, recipe.chat_template_jinja, recipe.eot_tokens)
    new_ids = add_format_tokens(tokenizer, fmt)
    if new_ids:
        if has_adapter:
            raise UsageError(
                f"{ctx.recipe_file}: the {fmt.name} template needs new tokens {fmt.eot_tokens} but stage 1 kept its "
                "adapter\n    fix: set ltk.stages.cpt.merge: true, or use the base's own template"
            )
        from ltk.train.vocab import init_new_embeddings

        old_tokenizer = load_tokenizer(full_weights, recipe)
        init_new_embeddings(model, old_tokenizer, tokenizer, new_ids)
    tokenizer.chat_template = fmt.template  # saved with the model: chat and serving use what was trained
    check_renders(tokenizer, fmt, conversations, s.data)
    dataset = sft_dataset(tokenizer, fmt, conversations, s.sequence_len)
    from ltk.train.budget import plan_steps

    budget = plan_steps(recipe, s, packed_rows=len(dataset), world_size=_world_size())
    args = training_args(
        ctx,
        s,
        packing=False,
        dataset_kwargs={"skip_prepare_dataset": True},  # tokenized above, labels masked by role
        dataset_num_proc=None,
    )
    peft_config = None
    if s.adapter != "full" and not has_adapter:
        peft_config = lora_config(s, model.config, new_token_ids=new_ids)
    token_rows = bool(new_ids) or any("trainable_tokens" in name for name, _ in model.named_parameters())
    trainer = make_trainer(
        trainer_class(plain_loss=token_rows),
        model=model,
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=_callbacks(ctx, s),
    )
    _peft_ready(trainer)
    info = _train(trainer, s, ctx)
    eos = [i for i in [*eot_token_ids(tokenizer, fmt), tokenizer.eos_token_id] if i is not None]
    meta = {
        "started_from": started_from,
        "examples": len(dataset),
        "budget": budget.as_dict(),
        "weights": weights_plan(recipe, s).describe(),
        **fmt.describe(),
        "format_tokens_added": len(new_ids),
        **info,
    }
    return save_final(
        trainer, tokenizer, s, ctx, meta, base_path=full_weights, eos_ids=list(dict.fromkeys(eos))
    )
