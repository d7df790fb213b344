"""The per-document corpus steps as a datatrove pipeline, and the executor that runs them.

    input shards -> normalise -> language ID -> quality filters -> exact key + MinHash signature
    -> token count -> per-task parquet (+ datatrove's per-step stats, summed by ``read_task_stats``)

Local executor by default; the same steps run on Slurm or Ray (``make_executor``). A killed build resumes:
datatrove skips the tasks it marked complete.
"""

from __future__ import annotations

import json
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from ltk.errors import LtkError, UsageError
from ltk.langpack.load import Langpack
from ltk.langpack.schema import Filters


def make_executor(pipeline: list, work: Path, *, tasks: int, workers: int, kind: str = "local", **kw: Any):
    """The datatrove executor that runs the per-task steps.

    ``local`` (default): ``LocalPipelineExecutor`` with ``workers`` processes. For a cluster, the same
    pipeline runs with ``SlurmPipelineExecutor(pipeline, tasks=..., time=..., partition=...,
    logging_dir=...)`` or ``RayPipelineExecutor(pipeline, tasks=...)`` (``kind="slurm"|"ray"``, extra
    keyword arguments passed through); the work folder must then be on a shared filesystem.
    """
    logging_dir = str(work / "logs")
    if kind == "local":
        return QuietLocalExecutor(
            pipeline, tasks=tasks, workers=workers, logging_dir=logging_dir, skip_completed=True, **kw
        )
    if kind == "slurm":
        from datatrove.executor import SlurmPipelineExecutor

        return SlurmPipelineExecutor(pipeline, tasks=tasks, logging_dir=logging_dir, **kw)
    if kind == "ray":
        from datatrove.executor import RayPipelineExecutor

        return RayPipelineExecutor(pipeline, tasks=tasks, logging_dir=logging_dir, **kw)
    raise UsageError(f"unknown executor {kind!r}; use local, slurm or ray")


def _quiet_datatrove() -> None:
    """datatrove logs every task at INFO on stderr; ltk shows its own progress, so keep warnings only."""
    import datatrove.executor.base as dt_base
    import datatrove.utils.logging as dt_logging
    from loguru import logger

    def default_logger() -> None:
        logger.remove()
        logger.add(sys.stderr, level="WARNING")

    def task_logger(logging_dir: Any, rank: int, local_rank: int = 0, node_rank: int = -1) -> Any:
        logger.remove()
        logfile = logging_dir.open(f"logs/task_{rank:05d}.log", "w")
        logger.add(sys.stderr, level="WARNING")
        logger.add(logfile, level="DEBUG")
        return logfile

    dt_logging.setup_default_logger = default_logger
    dt_base.add_task_logger = task_logger
    default_logger()


try:
    from datatrove.executor import LocalPipelineExecutor

    class QuietLocalExecutor(LocalPipelineExecutor):
        """LocalPipelineExecutor whose tasks log warnings only to the console (full logs stay on disk)."""

        def _run_for_rank(self, rank: int, local_rank: int = 0, node_rank: int = -1):  # type: ignore[override]
            _quiet_datatrove()
            return super()._run_for_rank(rank, local_rank, node_rank)

except ImportError:  # datatrove is an optional dependency (ltk[build])
    QuietLocalExecutor = None  # type: ignore[assignment,misc]


def read_task_stats(work: Path) -> dict[str, Counter]:
    """Sum datatrove's per-task stats: ``in_<lang>``, ``dropped_<lang>/<reason>``, ``kept_<lang>``."""
    totals: dict[str, Counter] = defaultdict(Counter)
    for file in sorted((work / "logs" / "stats").glob("*.json")):
        for step in json.loads(file.read_text()):
            timing = step.get("time_stats", 0)
            seconds = timing.get("total", 0) if isinstance(timing, dict) else timing
            totals["_seconds"][step.get("name", "?").split(": ", 1)[-1]] += float(seconds or 0)
            for key, value in step.get("stats", {}).items():
                total = value.get("total", 0) if isinstance(value, dict) else value
                if key.startswith("dropped_") and "/" in key:
                    lang, reason = key[len("dropped_") :].split("/", 1)
                    totals[lang][reason] += int(total)
                elif key.startswith("in_"):
                    totals["_in"][key[3:]] += int(total)
    return totals


def run_steps(
    pack: Langpack,
    work: Path,
    *,
    tasks: int,
    workers: int,
    tokenizer_dir: Path | None,
    progress: bool = True,
    executor: str = "local",
    executor_options: dict | None = None,
) -> None:
    """The per-document datatrove pipeline over the input shards (see the module docstring)."""
    from ltk.corpus.filters import Thresholds
    from ltk.corpus.langid import ENGLISH_CODES, expected_codes
    from ltk.corpus.steps import (
        LanguageFilter,
        Normalize,
        QualityFilter,
        ShardReader,
        ShardWriter,
        Signatures,
        TokenCount,
    )

    spec = pack.spec
    f = spec.filters
    lang = spec.language
    # English keeps the default thresholds of ltk, with the langpack's length bounds.
    english_filters = Filters(min_chars=f.min_chars, max_chars=f.max_chars)
    pipeline = [
        ShardReader(str(work), progress=progress),
        Normalize(),
        LanguageFilter(
            f.langid_backend,
            {"target": expected_codes(lang.iso639_1, lang.iso639_3, lang.flores), "english": ENGLISH_CODES},
            {"target": f.langid_min_confidence, "english": f.langid_min_confidence},
        ),
        QualityFilter({"target": Thresholds.from_spec(f), "english": Thresholds.from_spec(english_filters)}),
        Signatures(
            f.near_dedup.num_perm,
            # Target text shingled as its script needs (characters for Khmer, Myanmar, ...); English by words.
            {"target": f.near_dedup.shingling(lang.script), "english": f.near_dedup.shingling("Latn")},
            f.near_dedup.enabled,
        ),
        TokenCount(str(tokenizer_dir) if tokenizer_dir else None),
        ShardWriter(str(work)),
    ]
    _quiet_datatrove()
    make_executor(
        pipeline, work, tasks=tasks, workers=workers, kind=executor, **(executor_options or {})
    ).run()
    missing = [r for r in range(tasks) if not (work / "steps" / f"{r:05d}.parquet").exists()]
    if missing:
        # Slurm/Ray executors submit the tasks and return: rerunning the build when they are done resumes.
        raise LtkError(
            f"{len(missing)} of {tasks} datatrove tasks have no output yet (e.g. {missing[:5]}); logs in "
            f"{work / 'logs'}.\n    fix: on a cluster, rerun the same build when the jobs finish (it resumes)"
        )
