"""The quickstart end to end, offline, in its fast form (what CI runs so it cannot silently break):
embedded SmolLM2-135M -> build-langpack ny -> eval base -> train (CPT, SFT) -> eval -> report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # a few minutes on 2 cores


def test_fast_quickstart_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from ltk.cli import main

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        main,
        ["quickstart", "--fast", "--out", "runs/qs", "--build-root", "build", "--recipes-dir", "recipes"],
    )
    assert result.exit_code == 0, result.output + repr(result.exception)
    out = tmp_path / "runs" / "qs"
    # The report exists, and is a real page with the plots embedded.
    html = (out / "report" / "report.html").read_text(encoding="utf-8")
    assert "data:image/png;base64," in html
    assert (out / "report" / "report.md").is_file()
    summary = json.loads((out / "quickstart.json").read_text(encoding="utf-8"))
    rows = summary["headline"]
    assert set(rows) == {"base", "cpt", "sft"}
    # Training on Chichewa lowers Chichewa bits per byte, even after a handful of steps.
    assert rows["cpt"]["target_bpb"] < rows["base"]["target_bpb"]
    assert rows["sft"]["target_bpb"] < rows["base"]["target_bpb"]
    for stage in ("base", "cpt", "sft"):
        assert 0 < rows[stage]["english_bpb"] < 3 and rows[stage]["codeswitch_answers"] is not None
        # Small, but every headline number comes with its 95% interval.
        lo, hi = rows[stage]["target_bpb_ci"]
        assert lo <= rows[stage]["target_bpb"] <= hi
        assert (
            rows[stage]["codeswitch_answers_ci"] is not None and rows[stage]["chrf_to_target_ci"] is not None
        )
    # The headline numbers and the report's location were printed.
    assert "Chichewa bits per byte" in result.output and "report.html" in result.output
    # The quickstart's own recipe was written and names the run folder; the langpack's recipe too.
    assert (tmp_path / "recipes" / "ny.yml").is_file()
    assert "output_dir: runs/qs" in (out / "ny-quickstart.yml").read_text(encoding="utf-8")

    # A rerun resumes: nothing is trained or evaluated again.
    before = {p: p.stat().st_mtime_ns for p in (out / "eval").glob("*.json")}
    again = CliRunner().invoke(
        main,
        ["quickstart", "--fast", "--out", "runs/qs", "--build-root", "build", "--recipes-dir", "recipes"],
    )
    assert again.exit_code == 0, again.output + repr(again.exception)
    assert {p: p.stat().st_mtime_ns for p in (out / "eval").glob("*.json")} == before
    assert "skipped (--resume)" in again.output

    # It ends with one `ltk chat` and one `ltk export` command for its result; both work as printed.
    import re
    import shlex

    chat_line = next(line for line in result.output.splitlines() if line.startswith("talk to it:  ltk chat "))
    export_line = next(
        line for line in result.output.splitlines() if line.startswith("ship it:     ltk export ")
    )
    chat = shlex.split(chat_line.split("ltk ", 1)[1])
    assert chat == ["chat", "runs/qs", "--compare", "embedded:smollm2-135m"]
    session = CliRunner().invoke(main, [*chat, "--max-new-tokens", "24"], input="Moni! Muli bwanji?\n/exit\n")
    assert session.exit_code == 0, session.output + repr(session.exception)
    assert session.output.count("tokens/s") == 2  # one answer from each model, side by side
    # -p on the quickstart-sized model: decoded through its template, stopped at <|im_end|> or the limit
    one = CliRunner().invoke(main, ["chat", "runs/qs", "-p", "What is 2+2?", "--max-new-tokens", "48"])
    assert one.exit_code == 0, one.output + repr(one.exception)
    tokens = int(re.search(r"\[runs/qs \(sft\): (\d+) tokens", one.output).group(1))
    assert 0 < tokens <= 48 and "<|im_end|>" not in one.output and "<|im_start|>" not in one.output
    export = shlex.split(export_line.split("ltk ", 1)[1])
    assert export == ["export", "runs/qs", "--out", "runs/qs-ollama", "--format", "ollama"]
    shipped = CliRunner().invoke(main, export)
    assert shipped.exit_code == 0, shipped.output + repr(shipped.exception)
    rt = json.loads((tmp_path / "runs" / "qs-ollama" / "ltk_export.json").read_text())["round_trip"]
    assert rt["passed"] and (tmp_path / "runs" / "qs-ollama" / "Modelfile").is_file()
