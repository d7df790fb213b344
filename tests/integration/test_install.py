"""A plain install works, not only a checkout: build the wheel, install it into a fresh virtual
environment and list the langpacks from another working directory."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: int = 120) -> str:
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{cmd} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    run(
        [sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "-q", "-w", str(out)],
        cwd=out,
        timeout=300,
    )
    (built,) = out.glob("ltk-*.whl")
    return built


@pytest.mark.slow
def test_wheel_ships_the_langpacks_and_the_template(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "ltk/_builtin/langpacks/sw/langpack.yml" in names
    assert "ltk/_builtin/langpacks/ny/README.md" in names
    assert "ltk/_builtin/langpacks/_template/langpack.yml" in names
    assert "ltk/data/flores200_codes.txt" in names
    shipped = {
        n.split("/")[3] for n in names if n.startswith("ltk/_builtin/langpacks/") and n.endswith(".yml")
    }
    assert len(shipped - {"_template"}) >= 15


@pytest.mark.slow
def test_installed_wheel_lists_langpacks_from_any_directory(wheel: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    run([str(python), "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)], cwd=tmp_path)
    # ltk's own (light) dependencies come from the test environment's site-packages, appended after the
    # fresh environment's own, so that `ltk` itself can only be the installed wheel, never the checkout.
    fresh_site = Path(
        run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], cwd=tmp_path
        ).strip()
    )
    (fresh_site / "zz_test_deps.pth").write_text(sysconfig.get_path("purelib") + "\n", encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "LTK_LANGPACK_PATH", "VIRTUAL_ENV")}

    where = run([str(python), "-c", "import ltk; print(ltk.__file__)"], cwd=elsewhere, env=env)
    assert Path(where.strip()).is_relative_to(env_dir), where
    ltk = str(env_dir / "bin" / "ltk")
    listing = run([ltk, "langpacks", "list"], cwd=elsewhere, env=env)
    rows = [
        line.split() for line in listing.splitlines()[1:] if line.strip() and not line.endswith("in full.")
    ]
    codes = {row[0] for row in rows}
    assert len(codes) >= 15 and {"sw", "ny"} <= codes, listing
    assert str(env_dir) in run([ltk, "langpacks", "show", "swh_Latn"], cwd=elsewhere, env=env)
    assert run([ltk, "langpacks", "validate"], cwd=elsewhere, env=env).rstrip().endswith("langpack(s) valid.")
    run([ltk, "langpacks", "new", "wo", "--out", "packs"], cwd=elsewhere, env=env)  # template from the wheel
    # A fresh scaffold is not a finished pack: validate lists what is left from the template (exit 2).
    scaffold = subprocess.run(
        [ltk, "langpacks", "validate", "packs/wo"], cwd=elsewhere, env=env, capture_output=True, text=True
    )
    assert scaffold.returncode == 2 and "left from the template" in scaffold.stdout + scaffold.stderr
