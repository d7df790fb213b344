"""Translation engines behind one interface: encode source texts, generate target ids under per-row
limits, decode. Seq2seq families (NLLB, M2M-100, MADLAD-400, OPUS-MT; ``ltk.translation.families``)
through ``transformers`` ``generate`` or through CTranslate2; an LLM over an OpenAI-compatible endpoint
in ``ltk.translation.llm``. Everything around them (segmenting, dedup, batches, cache, resume, ranks, QE)
is shared.

transformers 5 removed the translation pipeline, so ltk calls ``generate`` itself: NLLB's source language
is set on the tokenizer (it prefixes ``eng_Latn`` and appends ``</s>``); other families get their prefix
token (``__en__``, ``<2sw>``, ``>>swh<<``) put in front by ltk; NLLB and M2M-100 force the target language
as the first generated token (``forced_bos_token_id``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from ltk.errors import LtkError, UsageError
from ltk.hardware import cpu_has_native_bf16
from ltk.io import cache_dir as default_cache_dir
from ltk.io import temp_sibling
from ltk.translation.families import (
    LICENCES,
    NAMES,
    TOKEN_PATTERNS,
    check_family,
    family_code,
    language_token,
)

NLLB_LICENCE = LICENCES["nllb"]
# Families whose target language is forced as the first generated token (the rest prefix the source).
FORCED_TARGET = ("nllb", "m2m100")
BACKENDS = ("auto", "transformers", "ctranslate2")
# Families "auto" sends to CTranslate2 (each tested here against the transformers engine: NLLB, M2M-100,
# MADLAD-400's T5). OPUS-MT stays on transformers (one model per direction, loaded lazily).
CT2_FAMILIES = ("nllb", "m2m100", "madlad")
# Compute types CTranslate2 can also store the weights in; any other (int8, int8_float16, ...) stores int8.
CT2_STORED = ("float32", "float16", "bfloat16")
# Weights' dtype for the transformers engine. "auto": bfloat16 on GPUs that support it (float16 on older
# ones), bfloat16 on CPUs with native bf16 matmuls (AMX / AVX512-BF16: matmuls 2-3x fp32 there, the engine
# ~1.7x, benchmarks/translation.py), float32 elsewhere (emulated bf16 is slower than fp32).
DTYPES = ("auto", "float32", "bfloat16", "float16")


@dataclass(frozen=True)
class GenerationSettings:
    """Decoding settings; part of the cache key, so changing one re-translates."""

    num_beams: int = 1
    max_new_tokens: int = 256
    # Per-segment cap: ratio * source tokens + 10 (stops NLLB's repetition loops early). None: no cap.
    max_length_ratio: float | None = 3.0
    min_new_tokens: int = 0
    max_input_tokens: int = 512

    def key(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    def limit(self, source_tokens: int) -> int:
        """How many tokens (target language token included) one segment may produce."""
        cap = self.max_new_tokens
        if self.max_length_ratio is not None:
            cap = min(cap, int(self.max_length_ratio * source_tokens) + 10)
        return max(cap, 2)

    def min_tokens(self, limits: Sequence[int]) -> int:
        """Tokens a batch must generate before it may stop (min_new_tokens >= the limits forces every row
        to decode to its limit: benchmarks use that to give every variant the same work)."""
        return min(self.min_new_tokens, max(limits))


class Engine(Protocol):
    backend: str
    family: str
    licence: str
    model_key: str
    precision: str  # what the weights compute in: a torch dtype name, or CTranslate2's compute type
    settings: GenerationSettings
    generate_calls: int

    def supported_languages(self) -> list[str]: ...
    def encode(self, texts: Sequence[str], src: str, tgt: str | None = None) -> list[list[int]]: ...
    def generate(
        self, batch: Sequence[Sequence[int]], tgt: str, limits: Sequence[int]
    ) -> list[list[int]]: ...
    def decode(self, ids: Sequence[int]) -> str: ...


def model_fingerprint(name_or_path: str, revision: str | None = None) -> str:
    """Identity of a model for the cache: hub id + revision, or a content hash of a local folder.

    For a folder, each file contributes its name, size and the sha256 of its first and last MiB: cheap on
    multi-GB weights, and any retrained or re-quantised checkpoint changes it.
    """
    path = Path(name_or_path)
    if not path.is_dir():
        return f"{name_or_path}@{revision or 'main'}"
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        size = file.stat().st_size
        digest.update(f"{file.relative_to(path)}:{size}".encode())
        with file.open("rb") as fh:
            digest.update(fh.read(1 << 20))
            if size > 2 << 20:
                fh.seek(-(1 << 20), os.SEEK_END)
                digest.update(fh.read())
    return f"local:{digest.hexdigest()[:24]}"


def _load_error(model: str, exc: BaseException) -> LtkError:
    offline = os.environ.get("HF_HUB_OFFLINE") == "1" or "offline" in str(exc).lower()
    hint = (
        "the hub is not reachable (offline): pass a local folder with --model / instructions.model"
        if offline or not Path(model).exists()
        else "check that the folder holds a transformers checkpoint (config.json, tokenizer, weights)"
    )
    return LtkError(f"cannot load translation model {model!r}: {type(exc).__name__}: {exc}\n    fix: {hint}")


def check_dtype(dtype: str) -> None:
    if dtype not in DTYPES:
        raise UsageError(f"unknown dtype {dtype!r}; use one of: {', '.join(DTYPES)}")


def resolve_dtype(dtype: str, device: str) -> str:
    """The concrete dtype for ``dtype`` ("auto" or a name in DTYPES) on ``device``."""
    check_dtype(dtype)
    if dtype != "auto":
        return dtype
    if device.startswith("cuda"):
        import torch

        return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    return "bfloat16" if cpu_has_native_bf16() else "float32"


class _Seq2SeqFamily:
    """What every seq2seq family shares: its language codes and how a source row is built."""

    name: str
    family: str
    tokenizer: Any
    settings: GenerationSettings
    _supported: list[str] | None = None

    @property
    def licence(self) -> str:
        return LICENCES[self.family]

    def supported_languages(self) -> list[str]:
        if self._supported is None:
            self._supported = language_codes(self.tokenizer, self.family)
        return self._supported

    def code(self, flores: str) -> str:
        """This family's code for a FLORES code (an error listing the supported ones when it has none)."""
        return family_code(self.family, flores, self.supported_languages(), self.name)

    def encode(self, texts: Sequence[str], src: str, tgt: str | None = None) -> list[list[int]]:
        if self.family == "nllb":
            return encode(self.tokenizer, texts, src, self.settings.max_input_tokens)
        return encode_with_prefix(
            self.tokenizer, texts, self.source_prefix(src, tgt), self.settings.max_input_tokens
        )

    def source_prefix(self, src: str, tgt: str | None) -> list[int]:
        """Token ids in front of the source: M2M-100 names the source, MADLAD the target (``<2sw>``), a
        multi-target OPUS-MT model the target (``>>swh<<``)."""
        tok = self.tokenizer
        if self.family == "m2m100":
            return [tok.convert_tokens_to_ids(language_token("m2m100", self.code(src)))]
        if self.family == "madlad":
            if tgt is None:
                raise LtkError("MADLAD-400 needs the target language to encode a source (its <2xx> prefix)")
            return [tok.convert_tokens_to_ids(language_token("madlad", self.code(tgt)))]
        if self.family == "marian" and tgt is not None and self.supported_languages():
            return [tok.convert_tokens_to_ids(language_token("marian", self.code(tgt)))]
        return []

    def forced_target(self, tgt: str) -> str | None:
        """The token generated first (NLLB, M2M-100), or None where the source prefix names the target."""
        if self.family not in FORCED_TARGET:
            return None
        return tgt if self.family == "nllb" else language_token("m2m100", self.code(tgt))

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True).strip()


class TransformersEngine(_Seq2SeqFamily):
    """A seq2seq translation model (NLLB, M2M-100, MADLAD-400, one OPUS-MT direction) through
    ``transformers`` ``generate``.

    The dtype is part of ``model_key`` (a float32 and a bfloat16 translation are cached apart).
    """

    backend = "transformers"

    def __init__(
        self,
        model: str,
        *,
        family: str = "nllb",
        settings: GenerationSettings | None = None,
        device: str | None = None,
        dtype: str = "auto",
        revision: str | None = None,
        trust_remote_code: bool = False,
    ):
        _check_seq2seq_family(family)
        self.name, self.family = model, family
        self.settings = settings or GenerationSettings()
        self.generate_calls = 0
        self.tokenizer, config = load_tokenizer_and_config(model, revision, trust_remote_code, family)
        import torch
        from transformers import AutoModelForSeq2SeqLM

        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.dtype = self.precision = resolve_dtype(dtype, self.device)
        try:
            self.model = AutoModelForSeq2SeqLM.from_pretrained(
                model,
                revision=revision,
                trust_remote_code=trust_remote_code,
                dtype=getattr(torch, self.dtype),
            )
        except Exception as exc:
            raise _load_error(model, exc) from exc
        self.model.to(self.device).eval()
        commit = getattr(config, "_commit_hash", None)
        base_key = _family_key(family, model_fingerprint(model, commit or revision))
        # float32 keeps the bare key, so caches written before dtypes were selectable stay valid.
        self.model_key = base_key if self.dtype == "float32" else f"{base_key}+{self.dtype}"

    def generate(self, batch: Sequence[Sequence[int]], tgt: str, limits: Sequence[int]) -> list[list[int]]:
        import torch

        pad = self.tokenizer.pad_token_id
        width = max(len(ids) for ids in batch)
        input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for i, ids in enumerate(batch):
            input_ids[i, : len(ids)] = torch.tensor(ids)
            mask[i, : len(ids)] = 1
        forced = self.forced_target(tgt)
        with torch.inference_mode():
            out = self.model.generate(
                input_ids=input_ids.to(self.device),
                attention_mask=mask.to(self.device),
                forced_bos_token_id=self.tokenizer.convert_tokens_to_ids(forced) if forced else None,
                max_new_tokens=max(limits),
                min_new_tokens=self.settings.min_tokens(limits) or None,
                num_beams=self.settings.num_beams,
                do_sample=False,
            )
        self.generate_calls += 1
        eos = self.tokenizer.eos_token_id
        # row[0] is the decoder start token; NLLB / M2M-100 rows then begin with the forced target token.
        return [_trim(row[1:], eos, pad, limit) for row, limit in zip(out.tolist(), limits, strict=True)]


class CTranslate2Engine(_Seq2SeqFamily):
    """The same model converted to CTranslate2 (int8 on CPU by default): several times faster on CPU.

    The conversion runs once and is kept next to the translation cache, keyed by the model fingerprint and
    the compute type (int8 weights for the int8 types; float32 / float16 / bfloat16 stored as such, so a
    float32 engine computes what the float32 transformers engine does).
    """

    backend = "ctranslate2"

    def __init__(
        self,
        model: str,
        *,
        family: str = "nllb",
        settings: GenerationSettings | None = None,
        device: str | None = None,
        compute_type: str | None = None,
        revision: str | None = None,
        cache_dir: Path | None = None,
        threads: int | None = None,
    ):
        try:
            import ctranslate2
        except ImportError:
            raise UsageError(
                "the ctranslate2 backend needs the ctranslate2 package: pip install 'ltk[fast]'"
            ) from None
        _check_seq2seq_family(family)
        self.name, self.family = model, family
        self.settings = settings or GenerationSettings()
        self.generate_calls = 0
        self.decoded_tokens = 0  # tokens decoded over all rows (greedy search): the work actually done
        self.tokenizer, config = load_tokenizer_and_config(model, revision, False, family)
        if not getattr(config, "is_encoder_decoder", False):
            raise _not_seq2seq(model, config)
        self.device = device or ("cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu")
        self.compute_type = self.precision = compute_type or (
            "int8" if self.device == "cpu" else "int8_float16"
        )
        base_key = _family_key(
            family, model_fingerprint(model, getattr(config, "_commit_hash", None) or revision)
        )
        self.model_key = f"{base_key}+ct2-{self.compute_type}"
        root = Path(cache_dir) if cache_dir else default_cache_dir()
        folder = root / "ct2" / hashlib.sha256(self.model_key.encode()).hexdigest()[:24]
        if not (folder / "model.bin").exists():
            _convert_ct2(model, folder, revision, family, self.compute_type)
        # Ids <-> tokens through the converted model's own vocabularies: exactly the model's ids, including
        # tokens the tokenizer cannot name (M2M-100's made-up words map to <unk> in M2M100Tokenizer).
        self.source_vocabulary, self.target_vocabulary = _ct2_vocabularies(folder)
        self._target_ids = {token: i for i, token in enumerate(self.target_vocabulary)}
        self.translator = ctranslate2.Translator(
            str(folder),
            device=self.device,
            compute_type=self.compute_type,
            inter_threads=1,
            intra_threads=threads or (os.cpu_count() or 1),
        )

    def generate(self, batch: Sequence[Sequence[int]], tgt: str, limits: Sequence[int]) -> list[list[int]]:
        tok = self.tokenizer
        forced = self.forced_target(tgt)
        vocabulary = self.source_vocabulary
        source = [[vocabulary[i] for i in ids] for ids in batch]

        decoded = [0]
        row_limits = tuple(limits)

        def stop_at_own_limit(step: Any) -> bool:
            # CTranslate2 takes a finished row out of the batch. Without this, a row that does not end
            # (a repetition loop) would decode to the batch's largest limit and be cut afterwards.
            # The callback must not reference the engine: CTranslate2 may drop it in its own worker
            # thread, and if that is the engine's last reference the Translator is destroyed there and
            # joins that very thread ("Resource deadlock avoided", the process aborts).
            decoded[0] += 1
            return step.step + 1 >= row_limits[step.batch_id]

        greedy = self.settings.num_beams == 1  # CTranslate2 calls back per token in greedy search only
        results = self.translator.translate_batch(
            source,
            target_prefix=[[forced]] * len(batch) if forced else None,
            beam_size=self.settings.num_beams,
            max_decoding_length=max(limits),
            min_decoding_length=self.settings.min_tokens(limits) or 1,
            max_input_length=0,
            callback=stop_at_own_limit if greedy else None,
        )
        self.generate_calls += 1
        self.decoded_tokens += decoded[0]
        eos, pad, ids = tok.eos_token_id, tok.pad_token_id, self._target_ids
        return [
            _trim([ids[t] for t in r.hypotheses[0]], eos, pad, limit)
            for r, limit in zip(results, limits, strict=True)
        ]


def _ct2_vocabularies(folder: Path) -> tuple[list[str], list[str]]:
    """The converted model's (source, target) vocabularies, token i being id i."""

    def read(name: str) -> list[str] | None:
        if (folder / f"{name}.json").exists():
            return json.loads((folder / f"{name}.json").read_text(encoding="utf-8"))
        if (folder / f"{name}.txt").exists():  # older CTranslate2 versions
            return (folder / f"{name}.txt").read_text(encoding="utf-8").split("\n")[:-1]
        return None

    shared = read("shared_vocabulary")
    source, target = read("source_vocabulary") or shared, read("target_vocabulary") or shared
    if source is None or target is None:
        raise LtkError(
            f"the CTranslate2 model in {folder} has no vocabulary file: delete the folder to convert again"
        )
    return source, target


def _convert_ct2(
    model: str, folder: Path, revision: str | None, family: str = "nllb", compute_type: str = "int8"
) -> None:
    import shutil

    from ctranslate2.converters import TransformersConverter

    converter_class = _M2M100Converter() if family == "m2m100" else TransformersConverter
    quantization = compute_type if compute_type in CT2_STORED else "int8"
    tmp = temp_sibling(folder)
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        converter_class(model, revision=revision).convert(str(tmp), quantization=quantization, force=True)
    except Exception as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise LtkError(f"cannot convert {model!r} to CTranslate2: {exc}") from exc
    folder.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(OSError):  # another rank may have finished the same conversion first
        tmp.rename(folder)
    shutil.rmtree(tmp, ignore_errors=True)


def _m2m100_vocabulary(tokenizer: Any) -> dict[str, int]:
    """M2M-100's vocabulary with its 100 language tokens, which M2M100Tokenizer keeps apart.

    CTranslate2's M2M-100 converter appends the language tokens it finds among the tokenizer's
    ``additional_special_tokens``; transformers 5 no longer lists them there, so the converted vocabulary
    came out 100 tokens short ("Source vocabulary 0 has size 128012 but the model expected 128112"). The
    ids must run 0..n-1 without gaps or clashes, or CTranslate2's token ids would not be the model's.
    """
    vocab = {**tokenizer.get_vocab(), **(getattr(tokenizer, "lang_token_to_id", None) or {})}
    ids = sorted(vocab.values())
    if ids != list(range(len(ids))):
        clash = len(ids) - len(set(ids))
        raise LtkError(
            f"the M2M-100 tokenizer's ids are not 0..{len(ids) - 1} without gaps ({clash} clashing): "
            "CTranslate2's vocabulary would not match the model's"
        )
    return vocab


def _M2M100Converter() -> type:
    """TransformersConverter whose tokenizer lists M2M-100's language tokens in its vocabulary."""
    from ctranslate2.converters import TransformersConverter

    class _FullVocabulary:
        def __init__(self, tokenizer: Any):
            self._tokenizer = tokenizer

        def __getattr__(self, name: str) -> Any:
            return getattr(self._tokenizer, name)

        def get_vocab(self) -> dict[str, int]:
            return _m2m100_vocabulary(self._tokenizer)

    class M2M100Converter(TransformersConverter):
        def load_tokenizer(self, tokenizer_class: Any, model_name_or_path: str, **kwargs: Any) -> Any:
            return _FullVocabulary(super().load_tokenizer(tokenizer_class, model_name_or_path, **kwargs))

    return M2M100Converter


def _trim(ids: Sequence[int], eos: int, pad: int, limit: int) -> list[int]:
    """Generated ids up to (not including) EOS, cut at the segment's own limit.

    Greedy decoding is causal, so cutting a row at its own limit gives exactly what generating it alone
    with that limit gives: the result does not depend on which segments shared its batch.
    """
    out: list[int] = []
    for token in ids[:limit]:
        if token == eos:
            break
        if token != pad:
            out.append(int(token))
    return out


def _not_seq2seq(model: str, config: Any) -> UsageError:
    return UsageError(
        f"{model!r} is a {getattr(config, 'model_type', '?')} model, not a seq2seq translation model"
        "\n    fix: use an NLLB checkpoint such as facebook/nllb-200-distilled-600M (or a local copy of one), "
        "another seq2seq MT model with its --engine, or --engine llm for a chat model behind an endpoint"
    )


def _check_seq2seq_family(family: str) -> None:
    check_family(family)
    if family == "llm":
        raise UsageError(
            "the llm engine runs behind an endpoint: load it with load_engine(..., family='llm')"
        )


def _family_key(family: str, base_key: str) -> str:
    # NLLB keeps the bare key, so caches written before engine families existed stay valid.
    return base_key if family == "nllb" else f"{family}:{base_key}"


def load_tokenizer_and_config(
    model: str, revision: str | None, trust_remote_code: bool, family: str = "nllb"
) -> tuple[Any, Any]:
    """Tokenizer and config, with every failure turned into a clear error before any work starts."""
    from transformers import AutoConfig, AutoTokenizer

    try:
        config = AutoConfig.from_pretrained(model, revision=revision, trust_remote_code=trust_remote_code)
    except Exception as exc:
        raise _load_error(model, exc) from exc
    if not getattr(config, "is_encoder_decoder", False):
        raise _not_seq2seq(model, config)
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            model, revision=revision, trust_remote_code=trust_remote_code
        )
    except Exception as exc:
        raise _load_error(model, exc) from exc
    if family != "marian" and not language_codes(tokenizer, family):  # one OPUS-MT pair needs no tokens
        example = {"nllb": "eng_Latn, swh_Latn", "m2m100": "__en__, __sw__", "madlad": "<2en>, <2sw>"}[family]
        raise UsageError(
            f"the tokenizer of {model!r} has no {NAMES[family]} language tokens ({example}, ...)"
            f"\n    fix: name the engine that matches the model (--engine / instructions.engine), or use a "
            f"{NAMES[family]} checkpoint"
        )
    return tokenizer, config


def language_codes(tokenizer: Any, family: str = "nllb") -> list[str]:
    """The language codes a tokenizer has tokens for, in ``family``'s naming."""
    pattern = TOKEN_PATTERNS[family]
    if family == "nllb":  # NLLB's language tokens are special tokens: no need to scan the vocabulary
        names = tokenizer.all_special_tokens
    else:  # M2M-100 / MADLAD / OPUS-MT keep theirs in the vocabulary (MADLAD: 256k pieces, read once)
        # (M2M100Tokenizer keeps its language tokens apart, in lang_token_to_id)
        names = [
            *tokenizer.get_vocab(),
            *tokenizer.all_special_tokens,
            *(getattr(tokenizer, "lang_token_to_id", None) or {}),
        ]
    return sorted({m.group(1) for t in names if (m := pattern.match(t))})


def language_tokens(tokenizer: Any) -> list[str]:
    """NLLB's FLORES-200 language tokens (kept for callers that know they hold an NLLB tokenizer)."""
    return language_codes(tokenizer, "nllb")


def check_languages(engine: Any, *codes: str) -> None:
    """Every FLORES code maps to one the engine supports; else one error listing what it supports."""
    for code in codes:
        engine.code(code)


@dataclass
class _TokenizerOnly(_Seq2SeqFamily):
    name: str
    tokenizer: Any
    family: str = "nllb"


def encode(tokenizer: Any, texts: Sequence[str], src: str, max_tokens: int) -> list[list[int]]:
    tokenizer.src_lang = src  # NLLB tokenizers rebuild their [src_lang] ... </s> template on assignment
    enc = tokenizer(list(texts), truncation=True, max_length=max_tokens)
    return [list(ids) for ids in enc["input_ids"]]


def encode_with_prefix(
    tokenizer: Any, texts: Sequence[str], prefix: list[int], max_tokens: int
) -> list[list[int]]:
    """``prefix + text + </s>`` for families whose tokenizers do not take a source language."""
    room = max(max_tokens - len(prefix) - 1, 1)
    enc = tokenizer(list(texts), add_special_tokens=False, truncation=True, max_length=room)
    return [[*prefix, *ids, tokenizer.eos_token_id] for ids in enc["input_ids"]]


def resolve_backend(
    backend: str, family: str = "nllb", device: str | None = None, dtype: str = "auto"
) -> str:
    """The concrete backend for ``backend`` ("auto", "transformers" or "ctranslate2").

    "auto" is CTranslate2 (int8) on a CPU without native bf16 matmuls when it is installed and no dtype was
    pinned: there the float32 transformers engine stays near 5x the naive way while CTranslate2 is over
    15x (benchmarks/results/translation-no-bf16.md). transformers everywhere else: on GPUs, and on CPUs
    with AMX / AVX512-BF16, where the bfloat16 transformers engine meets the targets itself.
    """
    if backend != "auto":
        return backend
    on_cpu = (device or "").startswith("cpu") or (device is None and not _cuda_available())
    if not on_cpu or dtype != "auto" or family not in CT2_FAMILIES or cpu_has_native_bf16():
        return "transformers"
    try:
        import ctranslate2  # noqa: F401
    except ImportError:
        return "transformers"
    return "ctranslate2"


def _cuda_available() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:  # pragma: no cover
        return False


def load_engine(
    model: str,
    backend: str = "auto",
    *,
    family: str = "nllb",
    settings: GenerationSettings | None = None,
    device: str | None = None,
    dtype: str = "auto",
    cache_dir: Path | None = None,
    revision: str | None = None,
    languages: Sequence[str] = (),
    endpoint: str | None = None,
    concurrency: int = 4,
    retries: int = 4,
) -> Engine:
    """The engine for ``family`` (nllb, m2m100, madlad, marian, llm) on ``backend``; ``languages`` (FLORES
    codes) are checked from the tokenizer (or the endpoint) before any weights load.

    ``dtype`` applies to the transformers backend (CTranslate2 picks its own compute type: int8 on CPU).
    ``model`` is, for marian, a model or a template with {src} and {tgt} (one model per direction); for
    llm, the model name the endpoint serves.
    """
    check_family(family)
    if backend not in BACKENDS:
        raise UsageError(f"unknown backend {backend!r}; use one of: {', '.join(BACKENDS)}")
    check_dtype(dtype)  # before any loading, and before the ctranslate2 check below
    if family == "llm":
        backend = "transformers" if backend == "auto" else backend
    backend = resolve_backend(backend, family, device, dtype)
    if backend == "ctranslate2" and dtype != "auto":
        raise UsageError(
            f"dtype {dtype!r} applies to the transformers backend; the ctranslate2 backend runs int8 on "
            "CPU and int8_float16 on GPU\n    fix: leave dtype at auto, or use --backend transformers"
        )
    if family == "llm":
        from ltk.translation.llm import LlmEngine

        if backend != "transformers":
            raise UsageError("--backend applies to local models; the llm engine runs behind its --endpoint")
        if not model:
            raise UsageError(
                "the llm engine needs the name of the model the endpoint serves"
                "\n    fix: --model NAME (ltk translate), --translation-model NAME or instructions.model"
            )
        return LlmEngine(
            endpoint or "",
            model,
            settings=settings,
            languages=languages,
            concurrency=concurrency,
            max_retries=retries,
        )
    if family == "marian":
        from ltk.translation.marian import MarianEngine

        if backend != "transformers":
            raise UsageError(
                "the ctranslate2 backend runs nllb, m2m100 and madlad here; OPUS-MT runs on transformers"
                "\n    fix: use --backend transformers with --engine marian"
            )
        return MarianEngine(
            model, settings=settings, device=device, dtype=dtype, revision=revision, languages=languages
        )
    if languages:
        tokenizer, _ = load_tokenizer_and_config(model, revision, False, family)
        check_languages(_TokenizerOnly(model, tokenizer, family), *languages)
    if backend == "transformers":
        return TransformersEngine(
            model, family=family, settings=settings, device=device, dtype=dtype, revision=revision
        )
    return CTranslate2Engine(
        model, family=family, settings=settings, device=device, cache_dir=cache_dir, revision=revision
    )
