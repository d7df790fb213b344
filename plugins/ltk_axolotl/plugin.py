"""``LtkPlugin``: validates the ``ltk:`` block, makes a rendered recipe run as it is under plain
``axolotl train recipes/CODE.yml`` (``embedded:`` bases resolved to a model folder, stage 1 sent to
``<output_dir>/cpt``), mixes English into stage 1 when the corpus was not mixed at build time, adds ltk's
evaluation callbacks when ``ltk.evaluate`` provides them, and when a stage ends writes ``<stage>/final``
(ltk's layout) and, after stage 1, the stage-2 config with the command that runs it."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from axolotl.integrations.base import BasePlugin

from ltk.recipe.schema import LtkBlock

LOG = logging.getLogger("ltk_axolotl")


def ltk_block(cfg: Any) -> LtkBlock | None:
    block = cfg.get("ltk") if hasattr(cfg, "get") else None
    if block is None:
        return None
    if isinstance(block, LtkBlock):
        return block
    return LtkBlock.model_validate(dict(block) if not isinstance(block, dict) else block)


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


class LtkPlugin(BasePlugin):
    """ltk's Axolotl plugin (see the package docstring)."""

    def get_input_args(self) -> str:
        return "ltk_axolotl.args.LtkArgs"

    def register(self, cfg: dict) -> None:
        """Before Axolotl reads the config: what a rendered recipe needs to run as written."""
        if not isinstance(cfg, dict) or "ltk" not in cfg:
            return
        base = cfg.get("base_model")
        if isinstance(base, str) and base.startswith("embedded:"):
            from ltk.assets import resolve_model

            cfg["base_model"] = resolve_model(base)
            LOG.info("ltk: %s is %s", base, cfg["base_model"])
        if cfg.get("bf16") == "auto" and not _cuda():
            cfg["bf16"] = False  # ltk's auto: bf16 where it runs natively; Axolotl's CPU path wants false
        out = Path(str(cfg.get("output_dir") or "."))
        if out.name not in ("cpt", "sft", "pref"):
            # A recipe's output_dir is the run folder; ltk's stage 1 lives in <run>/cpt.
            cfg["output_dir"] = str(out / "cpt")
            cfg.setdefault("dataset_prepared_path", str(out / "cpt" / "prepared"))
            LOG.info("ltk: stage 1 (cpt) writes to %s", cfg["output_dir"])

    def post_train(self, cfg: Any, model: Any) -> None:
        """``<stage>/final`` once Axolotl has saved (it calls this hook twice: before and after saving)."""
        block = ltk_block(cfg)
        out = Path(str(cfg.get("output_dir") or "."))
        saved = (out / "adapter_model.safetensors").is_file() or any(out.glob("model*.safetensors"))
        if block is None or not saved or int(cfg.get("local_rank") or 0) != 0:
            return
        from ltk.train.axolotl_backend import finalize_stage, stage_of, write_next_stage

        stage = stage_of(out)
        merge = block.stages.cpt.merge if stage == "cpt" else getattr(block.stages, stage).save == "merged"
        recipe_file = cfg.get("axolotl_config_path")
        final = finalize_stage(
            out, base_model=str(cfg.get("base_model")), merge=merge, stage=stage, recipe_file=recipe_file
        )
        LOG.info("ltk: %s saved to %s", stage, final)
        if stage == "cpt" and recipe_file and "Stage 2 (sft)" not in Path(recipe_file).read_text()[:400]:
            if Path(recipe_file).name == "axolotl.yml":
                return  # `ltk train --backend axolotl` runs stage 2 itself
            nxt = write_next_stage(recipe_file, out.parent, cpt_final=final)
            if nxt is not None:
                LOG.info("ltk: stage 2 (sft) is ready. Run it: axolotl train %s", nxt)
                print(f"\nltk: stage 1 saved to {final}\nltk: run stage 2 with: axolotl train {nxt}\n")

    def load_datasets(self, cfg: Any, preprocess: bool = False) -> Any:
        """Mix English at the recipe's ratio for stage 1 when the data are not pre-mixed; else let Axolotl load."""
        block = ltk_block(cfg)
        if block is None or block.english.premixed or block.english.ratio <= 0:
            return None
        datasets = cfg.get("datasets") or []
        cpt_data = block.stages.cpt.data
        if not datasets or str(datasets[0].get("path")) != cpt_data:
            return None  # not the corpus (stage 2's messages): nothing to mix
        from axolotl.common.datasets import load_datasets as axolotl_load_datasets
        from axolotl.utils.dict import DictDefault

        from ltk.train.mix import write_mixed
        from ltk.train.preflight import parquet_files

        out = Path(cfg.get("output_dir") or ".") / "ltk-mixed" / "train.parquet"
        write_mixed(
            parquet_files(cpt_data),
            parquet_files(block.english.data or ""),
            block.english.ratio,
            out,
            seed=int(cfg.get("seed") or 0),
        )
        LOG.info("ltk: mixed English at ratio %s into %s", block.english.ratio, out)
        entry = dict(datasets[0])
        entry.update({"path": str(out), "ds_type": "parquet"})
        cfg["datasets"] = [DictDefault(entry)]
        return axolotl_load_datasets(cfg=cfg)

    def add_callbacks_post_trainer(self, cfg: Any, trainer: Any) -> list:
        """ltk's evaluation callback (bits per byte etc.) when ``ltk.evaluate`` is importable here."""
        block = ltk_block(cfg)
        if block is None or not block.eval.enabled:
            return []
        try:
            from ltk.evaluate.callbacks import LtkEvalCallback
            from ltk.evaluate.metrics import EvalOptions
        except ImportError:
            return []
        out = Path(cfg.get("output_dir") or ".")
        return [
            LtkEvalCallback(
                block.build_dir,
                out.parent,
                stage=out.name if out.name in ("cpt", "sft", "pref") else "cpt",
                metrics=tuple(block.eval.metrics),
                options=EvalOptions(max_docs=block.eval.max_documents, max_prompts=block.eval.max_prompts),
            )
        ]
