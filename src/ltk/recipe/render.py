"""Rendering ``recipes/<code>.yml`` from a langpack. Depends only on the langpack, never on build outputs, so
re-rendering a committed recipe is byte-for-byte identical (a test checks every one)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from ltk import __version__
from ltk.assets import EMBEDDED_NAME
from ltk.instructions.tiers import default_tier
from ltk.io import atomic_write_text
from ltk.langpack.load import Langpack
from ltk.layout import BuildLayout
from ltk.recipe.schema import (
    PLUGIN_CLASS,
    CptStage,
    DatasetEntry,
    EnglishMix,
    EvalSettings,
    LtkBlock,
    Recipe,
    SftStage,
    Stages,
    Vocabulary,
)

# Stage 1 defaults: LoRA with the embeddings and output layer trainable (Zhao et al. 2024 train them too).
CPT_SEQUENCE_LEN = 1024
CPT_MICRO_BATCH = 4
CPT_GRAD_ACCUM = 8
CPT_LEARNING_RATE = 1e-4
# Stage 2 defaults: a smaller adapter, a few epochs over the tier.
SFT_LEARNING_RATE = 1e-4
SFT_EPOCHS = 3.0
SFT_LORA_R = 16
SFT_LORA_ALPHA = 32


def build_recipe(pack: Langpack, build_root: Path, *, base_model: str | None = None) -> Recipe:
    """The recipe model for a langpack (validated, nothing written); ``build_root`` as in build-langpack."""
    spec = pack.spec
    lang_dir = BuildLayout(Path(build_root), pack.code).posix()  # recipes use / on every system
    corpus = lang_dir / "corpus"
    tier = default_tier(spec.instructions.tiers)
    ltk_block = LtkBlock(
        langpack=pack.code,
        langpack_version=spec.version,
        language=spec.language.flores,
        language_name=spec.language.name,
        build_dir=str(lang_dir),
        token_budget=spec.corpus.token_budget,
        english=EnglishMix(ratio=spec.english.ratio, premixed=True),
        stages=Stages(
            cpt=CptStage(data=str(corpus / "train"), merge=True),
            sft=SftStage(
                tier=tier,
                data=str(lang_dir / "instructions" / f"tier-{tier}" / "train.jsonl"),
                start_from="cpt",
                learning_rate=SFT_LEARNING_RATE,
                num_epochs=SFT_EPOCHS,
                lora_r=SFT_LORA_R,
                lora_alpha=SFT_LORA_ALPHA,
                lora_modules_to_save=[],
                save="merged",
            ),
        ),
        eval=EvalSettings(
            heldout_target=str(corpus / "heldout_target"),
            heldout_english=str(corpus / "heldout_english"),
            prompts=str(lang_dir / "instructions" / "heldout_prompts.jsonl"),
            max_documents=spec.eval.max_documents,
            max_prompts=spec.eval.prompts,
        ),
        vocabulary=Vocabulary(
            policy=spec.tokenizer.policy,
            extend_size=spec.tokenizer.extend_size,
            training_documents=spec.tokenizer.training_documents,
        ),
    )
    return Recipe(
        base_model=base_model or EMBEDDED_NAME,
        plugins=[PLUGIN_CLASS],
        datasets=[
            DatasetEntry(path=str(corpus / "train"), type="completion", ds_type="parquet", field="text")
        ],
        sequence_len=CPT_SEQUENCE_LEN,
        adapter="lora",
        lora_modules_to_save=["embed_tokens", "lm_head"],
        learning_rate=CPT_LEARNING_RATE,
        micro_batch_size=CPT_MICRO_BATCH,
        gradient_accumulation_steps=CPT_GRAD_ACCUM,
        num_epochs=1.0,  # the built corpus is the budget: once over it (steps follow at train time)
        output_dir=f"runs/{pack.code}",
        ltk=ltk_block,
    )


# Key groups, in the order they are written, each under a comment (keeps recipes readable and stable).
_SECTIONS: list[tuple[str, tuple[str, ...]]] = [
    ("Model", ("base_model", "tokenizer_config", "trust_remote_code", "plugins")),
    (
        "Data (stage 1: the packed, English-mixed corpus)",
        (
            "datasets",
            "dataset_prepared_path",
            "val_set_size",
            "sequence_len",
            "sample_packing",
            "pad_to_sequence_len",
            "chat_template",
            "chat_template_jinja",
            "eot_tokens",
        ),
    ),
    (
        "Adapter (null = full fine-tuning; qlora = LoRA on a 4-bit base)",
        (
            "adapter",
            "load_in_4bit",
            "load_in_8bit",
            "lora_r",
            "lora_alpha",
            "lora_dropout",
            "lora_target_modules",
            "lora_modules_to_save",
            "lora_mlp_kernel",
            "lora_qkv_kernel",
            "lora_o_kernel",
        ),
    ),
    (
        "Optimisation",
        (
            "learning_rate",
            "lr_scheduler",
            "warmup_ratio",
            "weight_decay",
            "optimizer",
            "max_grad_norm",
            "micro_batch_size",
            "gradient_accumulation_steps",
            "num_epochs",
            "max_steps",
            "gradient_checkpointing",
        ),
    ),
    ("Outputs", ("output_dir", "logging_steps", "save_steps", "save_total_limit", "seed")),
    ("Precision and attention", ("bf16", "fp16", "tf32", "attn_implementation", "torch_compile")),
    (
        "Logging and scale-out (passed through)",
        ("use_tensorboard", "use_wandb", "wandb_project", "deepspeed", "fsdp", "fsdp_config"),
    ),
    ("What Axolotl has no key for (validated by the ltk_axolotl plugin)", ("ltk",)),
]
# Keys whose null means something (adapter: null = full fine-tuning), so they are written even when null.
_KEEP_NULL = {"adapter"}


def _drop_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value


def recipe_to_yaml(recipe: Recipe, header: str = "") -> str:
    """Serialise a recipe deterministically: fixed key order, section comments, no nulls but meaningful ones."""
    data = recipe.model_dump(mode="json")
    written: set[str] = set()
    chunks = [header] if header else []
    for title, keys in _SECTIONS:
        section = {}
        for key in keys:
            written.add(key)
            value = data[key]
            if value is None and key not in _KEEP_NULL:
                continue
            section[key] = _drop_nulls(value)
        if section:
            body = yaml.safe_dump(
                section, sort_keys=False, default_flow_style=False, width=110, allow_unicode=True
            )
            chunks.append(f"# {title}\n{body}")
    missing = set(data) - written
    if missing:  # a new schema field must be placed in a section, or it would silently vanish
        raise RuntimeError(f"recipe keys with no section: {sorted(missing)}")
    return "\n".join(chunks)


def recipe_header(pack: Langpack, recipe_path: PurePosixPath) -> str:
    spec = pack.spec
    return (
        f"# ltk recipe for {spec.language.name} ({spec.language.flores}), rendered from langpack "
        f"{pack.code!r} version {spec.version} by ltk {__version__}.\n"
        f"# Run it:      ltk train {recipe_path}\n"
        f"#   or:        ltk train {recipe_path} --backend axolotl   (needs tools/setup_axolotl.sh)\n"
        f"# Re-render:   ltk build-langpack {pack.code} --stage recipe   (keeps this file if you edited it;\n"
        "#              add --overwrite-recipe to replace your edits)\n"
        "# Steps follow at train time from the built corpus, the number of processes and num_epochs\n"
        "# (`ltk train RECIPE --dry-run` shows tokens, epochs, steps and a memory plan).\n"
        "# Top-level keys are Axolotl's and describe stage 1 (continual pretraining); `ltk:` holds the\n"
        "# language, the stages (cpt -> sft, and pref: DPO against code-switching, off until you set\n"
        "# ltk.stages.pref.enabled: true), the English mix, evaluation and the vocabulary policy.\n"
    )


# The last line of a rendered recipe: the sha256 of everything above it. A file whose text no longer
# matches its stamp was edited by someone, and re-rendering keeps it.
STAMP_PREFIX = "# ltk-rendered sha256:"


def stamp(text: str) -> str:
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return f"{text}{STAMP_PREFIX} {digest} (edit freely: a re-render keeps an edited recipe)\n"


def is_edited(text: str) -> bool:
    """True when a recipe's text differs from what was rendered (its stamp), or it has no stamp."""
    body, sep, last = text.rstrip("\n").rpartition("\n")
    if not sep or not last.startswith(STAMP_PREFIX):
        return True
    digest = last[len(STAMP_PREFIX) :].split()[0]
    return hashlib.sha256((body + "\n").encode("utf-8")).hexdigest() != digest


def render_recipe(
    pack: Langpack, build_root: Path, recipes_dir: Path, *, base_model: str | None = None
) -> str:
    """The recipe text for a langpack (what :func:`write_recipe` writes)."""
    recipe = build_recipe(pack, build_root, base_model=base_model)
    recipe_path = PurePosixPath(Path(recipes_dir).as_posix()) / f"{pack.code}.yml"
    return stamp(recipe_to_yaml(recipe, recipe_header(pack, recipe_path)))


@dataclass(frozen=True)
class RecipeWrite:
    path: Path
    status: str  # written | unchanged | kept (edited by the user)
    rendered: Path | None = None  # where the fresh render went when the file was kept

    @property
    def kept(self) -> bool:
        return self.status == "kept"


def write_recipe(
    pack: Langpack,
    build_root: Path,
    recipes_dir: Path,
    *,
    base_model: str | None = None,
    overwrite: bool = False,
) -> RecipeWrite:
    """Write ``<recipes_dir>/<code>.yml`` atomically. Build outputs need not exist.

    A recipe the user edited is never overwritten (unless ``overwrite``): it is kept, and the fresh
    render goes next to it as ``<code>.rendered.yml`` to compare with.
    """
    path = Path(recipes_dir) / f"{pack.code}.yml"
    text = render_recipe(pack, build_root, recipes_dir, base_model=base_model)
    if path.is_file() and not overwrite:
        current = path.read_text(encoding="utf-8")
        if current == text:
            return RecipeWrite(path, "unchanged")
        if is_edited(current):
            rendered = atomic_write_text(path.with_name(f"{pack.code}.rendered.yml"), text)
            return RecipeWrite(path, "kept", rendered)
    return RecipeWrite(atomic_write_text(path, text), "written")
