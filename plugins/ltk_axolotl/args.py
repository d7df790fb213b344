"""The ``ltk:`` block as Axolotl config fields: Axolotl merges this model into its own input config, so the
block is validated (strictly, by ltk's own schema) instead of being silently dropped."""

from __future__ import annotations

from pydantic import BaseModel, Field

from ltk.recipe.schema import LtkBlock


class LtkArgs(BaseModel):
    ltk: LtkBlock | None = Field(
        default=None, description="ltk's recipe block (language, stages, mix, eval)."
    )
