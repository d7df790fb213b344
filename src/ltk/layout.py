"""Where things live on disk: one language's build folder and one run folder.

A build root (``build/``, what ``ltk build-langpack --out`` names) holds one folder per language::

    build/
      cache/                          translations and converted models, shared by every language
      ny/                             BuildLayout(root="build", code="ny")
        corpus/{train,heldout_target,heldout_english}/part-*.parquet, manifest.json
        parallel/<set>.parquet, manifest.json
        instructions/tier-<N>/train.jsonl, heldout_prompts.jsonl, manifest.json

Everywhere a command takes ``--build``, it means the language folder (``build/ny``).

A run folder (``runs/ny``, a recipe's ``output_dir``) holds what training and evaluation write::

    runs/ny/
      recipe.yml                      the recipe as run
      cpt/ sft/                       each stage: checkpoint-N/, log.jsonl, final/ (with ltk_stage.json)
      eval/<stage>.json               one evaluation (+ <stage>.samples.jsonl)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

CORPUS_SPLITS = ("train", "heldout_target", "heldout_english")


@dataclass(frozen=True)
class BuildLayout:
    """One language's build folder: ``<root>/<code>``."""

    root: Path
    code: str

    @classmethod
    def of(cls, language_dir: str | Path) -> BuildLayout:
        """The layout of an existing language folder such as ``build/ny``."""
        path = Path(language_dir)
        return cls(path.parent, path.name)

    @property
    def dir(self) -> Path:
        return Path(self.root) / self.code

    # corpus ----------------------------------------------------------------------------------------
    @property
    def corpus(self) -> Path:
        return self.dir / "corpus"

    @property
    def corpus_train(self) -> Path:
        return self.corpus / "train"

    @property
    def heldout_target(self) -> Path:
        return self.corpus / "heldout_target"

    @property
    def heldout_english(self) -> Path:
        return self.corpus / "heldout_english"

    def corpus_split(self, split: str) -> Path:
        return self.corpus / split

    @property
    def corpus_work(self) -> Path:
        """The corpus stage's resumable work folder (removed when the stage completes)."""
        return self.dir / ".corpus-work"

    # parallel sets ---------------------------------------------------------------------------------
    @property
    def parallel(self) -> Path:
        return self.dir / "parallel"

    def parallel_set(self, name: str) -> Path:
        return self.parallel / f"{name}.parquet"

    # instructions ----------------------------------------------------------------------------------
    @property
    def instructions(self) -> Path:
        return self.dir / "instructions"

    def tier(self, size: int) -> Path:
        """A tier's ``train.jsonl``."""
        return self.instructions / f"tier-{size}" / "train.jsonl"

    @property
    def heldout_prompts(self) -> Path:
        return self.instructions / "heldout_prompts.jsonl"

    # shared ----------------------------------------------------------------------------------------
    @property
    def cache(self) -> Path:
        """The build root's cache (translations, converted models): shared by every language."""
        return Path(self.root) / "cache"

    def posix(self) -> PurePosixPath:
        """The language folder as written into recipes (forward slashes on every system)."""
        return PurePosixPath(self.dir.as_posix())


@dataclass(frozen=True)
class RunLayout:
    """A run folder: a recipe's ``output_dir``."""

    dir: Path

    def stage(self, name: str) -> Path:
        return Path(self.dir) / name

    def final(self, stage: str) -> Path:
        return self.stage(stage) / "final"

    @property
    def eval(self) -> Path:
        return Path(self.dir) / "eval"

    def eval_file(self, stage: str) -> Path:
        return self.eval / f"{stage}.json"

    def samples_file(self, stage: str) -> Path:
        return self.eval / f"{stage}.samples.jsonl"

    @property
    def recipe(self) -> Path:
        return Path(self.dir) / "recipe.yml"
