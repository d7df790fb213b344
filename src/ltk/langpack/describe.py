"""Human-readable views of langpacks: the list table and the full description."""

from __future__ import annotations

import yaml

from ltk.langpack.load import Langpack
from ltk.registry import Registry


def _tiers(pack: Langpack) -> str:
    return "/".join(
        f"{t // 1000}k" if t >= 1000 and t % 1000 == 0 else str(t) for t in pack.spec.instructions.tiers
    )


def langpack_rows(registry: Registry) -> list[dict]:
    rows = []
    for pack in registry:
        spec = pack.spec
        rows.append(
            {
                "code": pack.code,
                "name": spec.language.name,
                "flores": spec.language.flores,
                "script": spec.language.script,
                "sources": len(spec.corpus.sources),
                "tiers": _tiers(pack),
                "mix": f"{spec.english.ratio:.2f}",
                "version": spec.version,
                "origin": pack.origin,
            }
        )
    return rows


def render_table(rows: list[dict]) -> str:
    columns = ["code", "name", "flores", "script", "sources", "tiers", "mix", "version"]
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) if rows else len(c) for c in columns}
    lines = ["  ".join(c.upper().ljust(widths[c]) for c in columns)]
    lines += ["  ".join(str(r[c]).ljust(widths[c]) for c in columns) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


def describe(pack: Langpack) -> str:
    spec = pack.spec
    lang = spec.language
    head = [
        f"{lang.name} ({pack.code}) - langpack version {spec.version}",
        f"  codes: iso639-1={lang.iso639_1 or '-'} iso639-3={lang.iso639_3} flores={lang.flores} "
        f"script={lang.script}" + (f" aliases={','.join(lang.aliases)}" if lang.aliases else ""),
        f"  folder: {pack.root} ({pack.origin})",
        *(
            [f"  includes: {', '.join(pack.includes)} (merged under the pack's own keys; shown resolved)"]
            if pack.includes
            else []
        ),
        f"  corpus: {len(spec.corpus.sources)} source(s), budget {spec.corpus.token_budget:,} tokens; "
        f"English mix {spec.english.ratio:.0%} of tokens",
        f"  instructions: tiers {_tiers(pack)}, translated with {spec.instructions.engine} ({spec.instructions.translation_model})",
        f"  tokenizer: {spec.tokenizer.policy} the base vocabulary",
        "",
    ]
    body = yaml.safe_dump(
        spec.model_dump(mode="json", exclude_defaults=False), sort_keys=False, allow_unicode=True
    )
    return "\n".join(head) + body
