"""Every shipped langpack, end to end: built from schema-faithful local copies of its real sources
(tests/hub_copies.py: the datasets' real columns and types, UDHR text in the pack's language and script)
with ``--data-dir``, through every stage (corpus with language ID, filters and dedup; parallel sets;
instructions translated by a tiny NLLB; recipe), then one training step on a tiny model.

What the tiny data cannot meet is lowered, through the same validated ``override`` a user's change goes
through: ``corpus.min_documents`` (a pack expects 1000 web documents; the UDHR makes about 20) and
``eval.prompts``. Every identifier the pack names (dataset, config, split, text_field, field_map), its
language codes, its filters and its script assumptions are used as shipped.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml

from hub_copies import hub_sources, write_hub_copies
from ltk.errors import LtkError
from ltk.langpack.load import LANGPACK_FILE, Langpack, load_langpack
from ltk.validation import override

LANGPACKS = Path(__file__).resolve().parents[2] / "langpacks"
SHIPPED = sorted(
    p.parent.name for p in LANGPACKS.glob(f"*/{LANGPACK_FILE}") if not p.parent.name.startswith("_")
)
# The model a pack trains on for its one step: SmolLM2's tokenizer for most, other families' real
# tokenizers (tiny random models of their architecture) for some, so that byte-fallback-free and
# large-vocabulary tokenizers meet every script too.
FAMILY_OF = {"km": "qwen3", "my": "llama3_1", "am": "qwen3"}

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning", "ignore::DeprecationWarning"),
]


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> dict:
    import torch

    test_translate = pytest.importorskip("test_translate")  # same folder: the tiny NLLB builder
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("every-langpack")
    return {
        "root": root,
        "data": root / "copies",
        "nllb": test_translate.build_tiny_nllb(root / "nllb"),
        "timings": {},
    }


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.delenv("LTK_LANGPACK_PATH", raising=False)


# The tiny NLLB has random weights: quality estimation rightly drops everything it writes. A pack whose
# instructions are all translated (no ready-made set: am ha ig rw so yo zu) gets QE loose enough to keep
# some, so that its tiers, and its SFT step, exist.
LOOSE_QE = {
    "instructions.quality.min_roundtrip_chrf": 0.0,
    "instructions.quality.langid_min_confidence": 0.0,
    "instructions.quality.min_length_ratio": 0.01,
    "instructions.quality.max_length_ratio": 100.0,
    "instructions.quality.max_repeated_ngram_fraction": 1.0,
}


def tiny(pack: Langpack) -> Langpack:
    only_translated = not (pack.spec.instructions.ready_made or pack.spec.instructions.from_parallel)
    spec = override(
        pack.spec,
        {
            **(LOOSE_QE if only_translated else {}),
            "corpus.min_documents": 5,
            "corpus.heldout.fraction": 0.3,  # a few held-out documents of ~20 (the packs hold out 0.5%)
            "english.heldout.fraction": 0.3,
            "eval.prompts": 2,
            "eval.max_documents": 4,
        },
        source=f"{pack.file} (test overrides)",
    )
    return Langpack(spec=spec, root=pack.root, origin=pack.origin, includes=pack.includes)


def build(pack: Langpack, shared: dict, model: Path, out: Path):
    from ltk.pipeline import BuildOptions, build_langpack

    options = BuildOptions(
        data_dir=shared["data"],
        tokenizer=str(model),
        base_model=str(model),
        translation_model=str(shared["nllb"]),
        # The tiny NLLB on transformers (its sinusoidal positions grow with the input; a CTranslate2
        # conversion of it stops at 256 positions): the engines' own tests cover the backends.
        translation_backend="transformers",
        limit=300,  # every copy is smaller; ny reads its Bibles from packages: 300 chapters/verses each
        progress=False,
    )
    return build_langpack(pack, out / "build", out / "recipes", options)


@pytest.mark.parametrize("code", SHIPPED)
def test_langpack_builds_and_trains_one_step(
    code: str, shared: dict, tiny_llama_dir: Path, tiny_family_model, tmp_path: Path
) -> None:
    from ltk.train.run import train_recipe

    start = time.perf_counter()
    pack = load_langpack(LANGPACKS / code)
    copied = write_hub_copies(pack, shared["data"])
    assert sorted(copied) == sorted(s.name for s in hub_sources(pack))
    family = FAMILY_OF.get(code)
    model = tiny_family_model(family) if family else tiny_llama_dir
    result = build(tiny(pack), shared, model, tmp_path)
    built = time.perf_counter()

    corpus = result.corpus
    assert corpus["documents"]["target"]["train"] >= 5, corpus["documents"]
    # ltk promises ±1%; with 10-20 documents of up to ~1,500 tokens each (byte-level tokens of a
    # non-Latin script) the mix can only land within a document's share of the corpus.
    assert corpus["english_ratio"]["achieved"] == pytest.approx(pack.spec.english.ratio, abs=0.02), (
        corpus["documents"],
        corpus["drops"],
        corpus["tokens"],
    )
    for source in pack.spec.corpus.sources:  # every source was read, under its real columns
        info = corpus["sources"][source.name]
        assert info["status"] == "ok" and info["records_read"] > 0, (source.name, info)
    assert sum(corpus["sources"][s.name]["train_documents"] for s in pack.spec.corpus.sources) >= 5
    for name, info in result.parallel["sets"].items():
        assert info["pairs"] > 0, (name, info)
    instructions = result.instructions
    assert instructions["tiers"][0]["rows"] > 0
    assert instructions["counts"]["ready_made_kept"] > 0 or not pack.spec.instructions.ready_made
    assert instructions["counts"]["translated"] > 0 or not pack.spec.instructions.translate
    only_translated = not (pack.spec.instructions.ready_made or pack.spec.instructions.from_parallel)
    if only_translated:
        assert instructions["counts"]["translated_kept"] > 0, instructions["counts"]
    recipe = yaml.safe_load(result.recipe.read_text(encoding="utf-8"))
    assert recipe["ltk"]["language"] == pack.spec.language.flores

    # One step on the tiny model, of one short sequence (a real vocabulary's output layer is most of
    # the cost), on the one tier the tiny data filled.
    recipe.update(sequence_len=128, micro_batch_size=1, gradient_accumulation_steps=1)
    recipe["ltk"]["eval"]["enabled"] = False  # `ltk eval` is proven elsewhere; here: the stages run
    # A pack whose tiers are all random-NLLB output (kept by the loose QE) trains its CPT step only:
    # that junk does not survive a chat template verbatim, and ltk's preflight rightly refuses it. The
    # SFT step is proven on the other packs' tiers (ready-made or parallel text in the language).
    stages = ("cpt",) if only_translated else ("cpt", "sft")
    result.recipe.write_text(yaml.safe_dump(recipe, allow_unicode=True, sort_keys=False), encoding="utf-8")
    built_tier = int(instructions["tiers"][0]["name"].removeprefix("tier-"))
    runs = train_recipe(
        result.recipe,
        stage="all" if len(stages) == 2 else stages[0],
        max_steps=1,
        output_dir=str(tmp_path / "run"),
        tier=built_tier,
    )
    for stage in stages:
        record = json.loads((Path(runs[stage]) / "ltk_stage.json").read_text())
        assert record["global_step"] == 1
    end = time.perf_counter()
    shared["timings"][code] = (round(built - start, 1), round(end - built, 1))
    print(f"\n{code}: built in {built - start:.1f} s, trained in {end - built:.1f} s ({family or 'smollm2'})")


# ------------------------------------------------------------------ wrong identifiers fail, by name
def _copy_of(code: str, tmp_path: Path, change) -> Langpack:
    """A copy of a shipped pack (with its template) whose YAML ``change`` edits."""
    import shutil

    root = tmp_path / "packs"
    shutil.copytree(LANGPACKS / "_shared", root / "_shared")
    shutil.copytree(LANGPACKS / code, root / code)
    doc = yaml.safe_load((root / code / LANGPACK_FILE).read_text(encoding="utf-8"))
    change(doc)
    (root / code / LANGPACK_FILE).write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return load_langpack(root / code)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (
            lambda doc: doc["corpus"]["sources"][0].update(text_field="content"),
            ["source 'fineweb-2-khm'", "no column 'content' (text_field)", "its columns are: text, id, dump"],
        ),
        (
            lambda doc: doc["corpus"]["sources"][0].update(config="khm_Latn"),
            ["source 'fineweb-2-khm'", "holds config 'khm_Khmr'", "asks for config 'khm_Latn'"],
        ),
        (
            lambda doc: doc["instructions"]["ready_made"][0].update(field_map={"output": "response"}),
            ["source 'bactrian-x-km'", "no column 'response' (field_map.output)", "instruction, input, id"],
        ),
    ],
)
def test_a_wrong_identifier_fails_naming_source_and_columns(
    change, words: list[str], shared: dict, tiny_llama_dir: Path, tmp_path: Path
) -> None:
    pack = _copy_of("km", tmp_path, change)
    # The copies hold what the real datasets hold, whatever the pack now says.
    write_hub_copies(load_langpack(LANGPACKS / "km"), shared["data"])
    with pytest.raises(LtkError) as err:
        build(tiny(pack), shared, tiny_llama_dir, tmp_path)
    assert err.value.exit_code == 2
    for word in words:
        assert word in str(err.value)
