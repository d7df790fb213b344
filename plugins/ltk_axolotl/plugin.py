"""``LtkPlugin``: validates the ``ltk:`` block, mixes English into stage 1 when the corpus was not mixed at
build time, and adds ltk's evaluation callbacks when ``ltk.evaluate`` provides them."""

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


class LtkPlugin(BasePlugin):
    """ltk's Axolotl plugin (see the package docstring)."""

    def get_input_args(self) -> str:
        return "ltk_axolotl.args.LtkArgs"

    def register(self, cfg: dict) -> None:
        LOG.info("ltk plugin registered")

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
                stage=out.name if out.name in ("cpt", "sft") else "cpt",
                metrics=tuple(block.eval.metrics),
                options=EvalOptions(max_docs=block.eval.max_documents, max_prompts=block.eval.max_prompts),
            )
        ]
