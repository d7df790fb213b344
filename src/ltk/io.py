"""ltk's one home for files: atomic writes, folders swapped into place, sha256 of a file, the library
versions a manifest records, and the cache folder.

Every output ltk writes appears only when complete: a file is written next to its destination under a
``.tmp-<pid>`` name and renamed over it (``os.replace`` is atomic on one filesystem); a stage's folder is
filled under ``<name>.tmp-<pid>`` and swapped into place (``replace_dir``). A crash leaves at most a
temporary sibling, which the next run of the same stage removes (``remove_stale_temps``).

Only the standard library is imported here: the Axolotl plugin uses this module inside Axolotl's own
environment.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
from collections.abc import Iterable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

CACHE_ENV = "LTK_CACHE"


# ------------------------------------------------------------------------------------------------ cache
def cache_dir() -> Path:
    """ltk's cache root: ``$LTK_CACHE`` if set (``~`` expanded), else ``~/.cache/ltk``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "ltk"


# ---------------------------------------------------------------------------------------- atomic writes
def temp_sibling(path: Path) -> Path:
    """Where ``path`` is written before it is renamed into place (unique per process)."""
    path = Path(path)
    return path.with_name(f"{path.name}.tmp-{os.getpid()}")


@contextlib.contextmanager
def atomic_target(path: Path) -> Iterator[Path]:
    """A temporary path for a library that writes files itself (parquet, plots); renamed on success.

    with atomic_target(folder / "set.parquet") as tmp:
        pq.write_table(table, tmp)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_sibling(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_sibling(path)
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def atomic_write_text(path: Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def json_text(data: Any, *, sort_keys: bool = True, ensure_ascii: bool = True) -> str:
    """ltk's JSON files: indented, keys sorted, one trailing newline (stable bytes for the same data)."""
    return json.dumps(data, indent=2, sort_keys=sort_keys, ensure_ascii=ensure_ascii) + "\n"


def atomic_write_json(path: Path, data: Any, *, sort_keys: bool = True, ensure_ascii: bool = True) -> Path:
    return atomic_write_text(path, json_text(data, sort_keys=sort_keys, ensure_ascii=ensure_ascii))


def jsonl_lines(rows: Iterable[Any], *, sort_keys: bool = False) -> Iterator[str]:
    for row in rows:
        yield json.dumps(row, ensure_ascii=False, sort_keys=sort_keys) + "\n"


def write_jsonl(path: Path, rows: Iterable[Any], *, sort_keys: bool = False) -> dict[str, Any]:
    """Write JSON lines (inside a folder that is itself swapped into place); returns rows and sha256."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    n = 0
    with path.open("w", encoding="utf-8") as fh:
        for line in jsonl_lines(rows, sort_keys=sort_keys):
            fh.write(line)
            digest.update(line.encode("utf-8"))
            n += 1
    return {"rows": n, "sha256": digest.hexdigest()}


def atomic_write_jsonl(path: Path, rows: Iterable[Any], *, sort_keys: bool = False) -> dict[str, Any]:
    path = Path(path)
    tmp = temp_sibling(path)
    try:
        info = write_jsonl(tmp, rows, sort_keys=sort_keys)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return info


# --------------------------------------------------------------------------------------------- folders
def replace_dir(tmp: Path, final: Path) -> Path:
    """Swap a finished folder into place: the old one (if any) is moved aside first, then removed."""
    tmp, final = Path(tmp), Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    if final.exists():
        old = final.with_name(f"{final.name}.old-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, final)
    return final


@contextlib.contextmanager
def staged_dir(final: Path) -> Iterator[Path]:
    """Fill a temporary sibling of ``final``; on success it replaces ``final``, on error it is removed.

    with staged_dir(out / "instructions") as tmp:
        write_jsonl(tmp / "tier-1000" / "train.jsonl", rows)
    """
    final = Path(final)
    tmp = temp_sibling(final)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    replace_dir(tmp, final)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temps(folder: Path, name: str) -> None:
    """Remove ``<name>.tmp-<pid>`` / ``<name>.old-<pid>`` siblings left by processes that died."""
    folder = Path(folder)
    if not folder.is_dir():
        return
    for kind in ("tmp", "old"):
        for path in folder.glob(f"{name}.{kind}-*"):
            pid = path.name.rsplit("-", 1)[-1]
            if pid.isdigit() and not pid_alive(int(pid)):
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)


# ------------------------------------------------------------------------------------------- manifests
def sha256_file(path: Path, *, progress: bool = False, chunk: int = 1 << 20) -> str:
    """sha256 of a file, read in chunks (with a byte progress bar when asked)."""
    path = Path(path)
    digest = hashlib.sha256()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(
            total=path.stat().st_size, unit="B", unit_scale=True, desc=f"sha256 {path.name}", leave=False
        )
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
            if bar is not None:
                bar.update(len(block))
    if bar is not None:
        bar.close()
    return digest.hexdigest()


def library_versions(*dists: str, python: bool = False, missing: str | None = None) -> dict[str, str]:
    """Installed versions of ``dists`` for a manifest (``ltk`` first when asked); a missing package is
    left out, or recorded as ``missing`` when that is given."""
    out: dict[str, str] = {}
    if python:
        out["python"] = sys.version.split()[0]
    for dist in dists:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            if missing is not None:
                out[dist] = missing
    return out


def check_writable(folder: Path, *, flag: str = "--out") -> None:
    """Fail early, with the fix, when ``folder`` cannot be created or written."""
    from ltk.errors import UsageError

    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-probe-{os.getpid()}"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise UsageError(
            f"cannot write the folder {folder}: {exc.strerror or exc}.\n"
            f"    fix: pass {flag} with a folder you can write to, or fix its permissions"
        ) from None
