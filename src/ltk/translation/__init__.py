"""Machine translation for the instruction stage and ``ltk translate``: engines behind one interface
(:mod:`~ltk.translation.engines`), a kill-safe content-addressed cache (:mod:`~ltk.translation.cache`), the
batching loop they share (:mod:`~ltk.translation.batching`), sentence segmentation with protected spans
(:mod:`~ltk.translation.segment`) and quality estimation (:mod:`~ltk.translation.qe`).

The names below are the package's public API.
"""

from ltk.hardware import cpu_has_native_bf16
from ltk.translation.batching import (
    CPU_BATCH_TOKENS,
    DEFAULT_BATCH_TOKENS,
    DEFAULT_MAX_BATCH,
    TranslatedConversation,
    Translations,
    TranslationStats,
    back_translate,
    default_batch_tokens,
    distributed_rank,
    token_budget_batches,
    translate_conversations,
    translate_segments,
)
from ltk.translation.cache import TranslationCache
from ltk.translation.engines import (
    BACKENDS,
    DTYPES,
    NLLB_LICENCE,
    CTranslate2Engine,
    Engine,
    GenerationSettings,
    TransformersEngine,
    check_dtype,
    check_languages,
    load_engine,
    model_fingerprint,
    resolve_backend,
    resolve_dtype,
)

__all__ = [
    "BACKENDS",
    "CPU_BATCH_TOKENS",
    "DEFAULT_BATCH_TOKENS",
    "DEFAULT_MAX_BATCH",
    "DTYPES",
    "NLLB_LICENCE",
    "CTranslate2Engine",
    "Engine",
    "GenerationSettings",
    "TransformersEngine",
    "TranslatedConversation",
    "TranslationCache",
    "TranslationStats",
    "Translations",
    "back_translate",
    "check_dtype",
    "check_languages",
    "cpu_has_native_bf16",
    "default_batch_tokens",
    "distributed_rank",
    "load_engine",
    "model_fingerprint",
    "resolve_backend",
    "resolve_dtype",
    "token_budget_batches",
    "translate_conversations",
    "translate_segments",
]
