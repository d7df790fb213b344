"""``ltk report RUN...``: a markdown report, a self-contained HTML page (PNG plots embedded as base64) and a
model card (Hugging Face README with YAML front matter), comparing any number of runs side by side.

A run is a folder holding ``eval/<stage>.json`` files (see ``ltk.evaluate`` for the layout), or one eval
JSON file. Stages are shown in training order: base -> cpt (and its step checkpoints) -> sft.
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ltk.assets import EMBEDDED_HUB_IDS
from ltk.errors import UsageError
from ltk.evaluate import STAGE_ORDER
from ltk.io import atomic_write_bytes, atomic_write_text
from ltk.translation.engines import NLLB_LICENCE

STEP_RE = re.compile(r"^(?P<stage>.+)-step(?P<step>\d+)$")


# ----------------------------------------------------------------------------------------------- loading
def stage_sort_key(stage: str) -> tuple[int, float, str]:
    match = STEP_RE.match(stage)
    base, step = (match["stage"], float(match["step"])) if match else (stage, math.inf)
    index = STAGE_ORDER.index(base) if base in STAGE_ORDER else len(STAGE_ORDER)
    return (index, step, stage)


@dataclass
class Run:
    name: str
    path: Path
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)

    def last(self, metric: str) -> tuple[str, dict[str, Any]] | None:
        """The latest stage that has ``metric`` (without an error)."""
        for stage in reversed(list(self.stages)):
            value = self.stages[stage]["metrics"].get(metric)
            if value and "error" not in value and "skipped" not in value:
                return stage, value
        return None


def load_run(path: str | Path) -> Run:
    path = Path(path)
    if path.is_file() and path.suffix == ".json":
        files, name = [path], path.parent.parent.name if path.parent.name == "eval" else path.stem
    elif path.is_dir():
        folder = path / "eval" if (path / "eval").is_dir() else path
        files = [f for f in folder.glob("*.json") if not f.name.endswith(".samples.json")]
        name = path.name
    else:
        raise UsageError(f"run {path} does not exist; give a run folder (runs/<name>) or an eval JSON file")
    run = Run(name=name, path=path)
    loaded: dict[str, dict[str, Any]] = {}
    for file in files:
        try:
            data = json.loads(file.read_text("utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise UsageError(
                f"{file}: not a readable eval JSON ({exc}); rerun `ltk eval` for that stage"
            ) from None
        if isinstance(data, dict) and "metrics" in data:
            loaded[data.get("meta", {}).get("stage") or file.stem] = data
    if not loaded:
        raise UsageError(
            f"run {path}: no eval JSON found (looked for {path}/eval/<stage>.json); "
            f"run `ltk eval MODEL --build build/<code> --out {path}` first"
        )
    run.stages = {s: loaded[s] for s in sorted(loaded, key=stage_sort_key)}
    return run


def unique_names(runs: list[Run]) -> None:
    """Two runs with the same folder name get their parent folder prefixed."""
    seen: dict[str, int] = {}
    for run in runs:
        seen[run.name] = seen.get(run.name, 0) + 1
    for run in runs:
        if seen[run.name] > 1:
            run.name = f"{run.path.resolve().parent.name}/{run.name}"


# ------------------------------------------------------------------------------------------------- table
def _get(d: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(d, dict) or key not in d:
            return None
        d = d[key]
    return d


COLUMNS: list[tuple[str, tuple[str, ...], str]] = [
    ("bits/byte target", ("bpb", "target", "bits_per_byte"), "{:.4f}"),
    ("bits/byte English", ("bpb", "english", "bits_per_byte"), "{:.4f}"),
    ("ppl target", ("bpb", "target", "token_perplexity"), "{:.2f}"),
    ("ppl English", ("bpb", "english", "token_perplexity"), "{:.2f}"),
    ("code-switch words", ("codeswitch", "word_rate"), "pct"),
    ("code-switch answers", ("codeswitch", "answer_rate"), "pct"),
    ("chrF to target", ("chrf", "to_target", "chrf"), "{:.2f}"),
    ("chrF to English", ("chrf", "to_english", "chrf"), "{:.2f}"),
    ("BLEU to target", ("chrf", "to_target", "bleu"), "{:.2f}"),
    ("premium", ("premium", "premium"), "{:.2f}x"),
    ("judge mean (0-3)", ("judge", "mean"), "{:.2f}"),
]


def _fmt(value: Any, spec: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if spec == "pct":
        return f"{100 * value:.1f}%"
    return spec.format(value)


def interval_of(metrics: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any] | None:
    """The interval record stored for the value at ``path`` (the nearest ``intervals`` block above it),
    or None: eval JSONs written before intervals existed have none, and show the value alone."""
    for depth in range(len(path) - 1, 0, -1):
        block = _get(metrics, *path[:depth], "intervals")
        if isinstance(block, dict):
            found = _get(block, *path[depth:])
            if isinstance(found, dict) and "ci" in found:
                return found
    return None


def _fmt_ci(metrics: dict[str, Any], path: tuple[str, ...], spec: str) -> str:
    """``value [low, high]``, or the value alone when no interval was stored."""
    text = _fmt(_get(metrics, *path), spec)
    found = interval_of(metrics, path)
    if text == "–" or not found or not found.get("ci"):
        return text
    lo, hi = found["ci"]
    if spec == "pct":
        return f"{text} [{100 * lo:.1f}, {100 * hi:.1f}]"
    bound = spec.removesuffix("x")  # "1.85x [1.80, 1.90]"
    return f"{text} [{bound.format(lo)}, {bound.format(hi)}]"


def results_table(runs: list[Run]) -> tuple[list[str], list[list[str]]]:
    """Header and rows (one per run and stage); columns with no value anywhere are left out."""
    entries = [(run.name, stage, ev["metrics"]) for run in runs for stage, ev in run.stages.items()]
    values = [[_get(met, *path) for _, path, _ in COLUMNS] for _, _, met in entries]
    keep = [i for i in range(len(COLUMNS)) if any(v[i] is not None for v in values)]
    harness_cols = sorted(
        {
            (task, metric)
            for _, _, met in entries
            for task, vals in (_get(met, "harness", "tasks") or {}).items()
            for metric in vals
        }
    )
    header = ["run", "stage", *(COLUMNS[i][0] for i in keep), *(f"{t} {m}" for t, m in harness_cols)]
    rows = []
    for name, stage, met in entries:
        rows.append(
            [
                name,
                stage,
                *(_fmt_ci(met, COLUMNS[i][1], COLUMNS[i][2]) for i in keep),
                *(_fmt_ci(met, ("harness", "tasks", t, m), "{:.4f}") for t, m in harness_cols),
            ]
        )
    return header, rows


# Paired comparisons shown in the report: (compare key, value path, format).
CHANGES: list[tuple[str, tuple[str, ...], str]] = [
    ("bpb.target", ("bpb", "target", "bits_per_byte"), "{:+.4f}"),
    ("bpb.english", ("bpb", "english", "bits_per_byte"), "{:+.4f}"),
    ("codeswitch.answer_rate", ("codeswitch", "answer_rate"), "pct"),
    ("chrf.to_target.chrf", ("chrf", "to_target", "chrf"), "{:+.2f}"),
    ("chrf.to_english.chrf", ("chrf", "to_english", "chrf"), "{:+.2f}"),
    ("judge.mean", ("judge", "mean"), "{:+.2f}"),
]


def _fmt_diff(diff: dict[str, Any], spec: str) -> str:
    scale, spec = (100.0, "{:+.1f}") if spec == "pct" else (1.0, spec)
    text = spec.format(diff["difference"] * scale) + (" points" if scale == 100 else "")
    if diff.get("ci"):
        lo, hi = diff["ci"]
        text += f" [{spec.format(lo * scale)}, {spec.format(hi * scale)}]"
    return text


def _reading(diff: dict[str, Any]) -> str:
    if not diff.get("ci"):
        return "no interval (too few items)"
    lo, hi = diff["ci"]
    mcnemar = diff.get("mcnemar")
    if mcnemar and mcnemar["p_value"] >= 0.05 and (lo > 0 or hi < 0):
        return "no clear change (McNemar p >= 0.05: too few answers differ)"
    if lo > 0:
        return "higher (95% interval excludes 0)"
    if hi < 0:
        return "lower (95% interval excludes 0)"
    return "no clear change (interval contains 0)"


def changes_table(runs: list[Run]) -> tuple[list[str], list[list[str]]]:
    """Paired differences on the same items: each stage against the one before it in a run, and each
    other run against the first at the stages both have. Old eval JSONs without items are left out."""
    from ltk.evaluate.compare import compare

    pairs: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    for run in runs:
        # Whole stages only: checkpoints written during training (<stage>-stepN) would flood the table.
        stages = [s for s in run.stages if not STEP_RE.match(s)]
        for before, after in zip(stages, stages[1:], strict=False):
            pairs.append(
                (
                    f"{run.name}: {before} → {after}",
                    run.stages[before]["metrics"],
                    run.stages[after]["metrics"],
                )
            )
    for other in runs[1:]:
        for stage in runs[0].stages:
            if stage in other.stages:
                pairs.append(
                    (
                        f"{runs[0].name} → {other.name} ({stage})",
                        runs[0].stages[stage]["metrics"],
                        other.stages[stage]["metrics"],
                    )
                )
    header = ["comparison", "metric", "difference [95% interval]", "paired items", "reads as"]
    rows = []
    for name, a, b in pairs:
        for key, _, spec in CHANGES:
            diff = compare(a, b, key)
            if diff is not None:
                items = f"{diff['n']} {diff['unit']}"
                if "mcnemar" in diff:
                    items += f" (McNemar p={diff['mcnemar']['p_value']:.3g})"
                rows.append([name, diff["label"], _fmt_diff(diff, spec), items, _reading(diff)])
    return header, rows


# ------------------------------------------------------------------------------------------------- plots
def _err(metrics: dict[str, Any], path: tuple[str, ...], value: float) -> tuple[float, float]:
    """(below, above) the value: the stored interval as error-bar lengths, (0, 0) without one."""
    found = interval_of(metrics, path)
    if not found or not found.get("ci"):
        return (0.0, 0.0)
    lo, hi = found["ci"]
    return (max(0.0, value - lo), max(0.0, hi - value))


def _plots(runs: list[Run]) -> dict[str, tuple[str, bytes]]:
    """name -> (caption, PNG bytes), only for metrics some run has."""
    import io

    import matplotlib
    import numpy as np

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"figure.dpi": 100, "font.size": 10, "axes.grid": True, "grid.alpha": 0.3})
    out: dict[str, tuple[str, bytes]] = {}

    def save(fig: Any, name: str, caption: str) -> None:
        buf = io.BytesIO()
        fig.tight_layout()
        fig.savefig(buf, format="png", metadata={"Software": None})
        plt.close(fig)
        out[name] = (caption, buf.getvalue())

    all_stages = sorted({s for r in runs for s in r.stages}, key=stage_sort_key)
    x_of = {s: i for i, s in enumerate(all_stages)}

    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]

    def stage_lines(
        ax: Any, path: tuple[str, ...], scale: float = 1.0, label_suffix: str = "", style: str = "-"
    ) -> bool:
        """One line per run (same colour for a run on every plot), x = stages in training order."""
        drawn = False
        for i, run in enumerate(runs):
            pts = [
                (x_of[s], v * scale, tuple(e * scale for e in _err(ev["metrics"], path, v)))
                for s, ev in run.stages.items()
                if (v := _get(ev["metrics"], *path)) is not None
            ]
            if pts:
                xs, ys, errs = zip(*pts, strict=True)
                colour = colours[i % len(colours)]
                # Error bars: the stored 95% interval (none for old eval JSONs: zero-length bars).
                ax.errorbar(
                    xs, ys, yerr=np.array(errs).T, fmt=style, marker="o", color=colour, capsize=3,
                    label=run.name + label_suffix,
                )  # fmt: skip
                drawn = True
        ax.set_xticks(range(len(all_stages)), all_stages, rotation=20 if len(all_stages) > 4 else 0)
        return drawn

    if any(_get(ev["metrics"], "bpb") for r in runs for ev in r.stages.values()):
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
        for ax, side, title in ((axes[0], "target", "target language"), (axes[1], "english", "English")):
            stage_lines(ax, ("bpb", side, "bits_per_byte"))
            ax.set_title(f"Bits per byte, {title} (lower is better)")
            ax.set_ylabel("bits per byte")
        axes[0].legend(fontsize=8)
        save(
            fig,
            "bpb",
            "Bits per byte on held-out text across stages: the target should fall, English should hold. "
            "Error bars: 95% intervals (bootstrap over documents).",
        )

    if any(
        _get(ev["metrics"], "codeswitch", "word_rate") is not None for r in runs for ev in r.stages.values()
    ):
        fig, ax = plt.subplots(figsize=(6.5, 3.6))
        stage_lines(ax, ("codeswitch", "word_rate"), 100, " (words)")
        stage_lines(ax, ("codeswitch", "answer_rate"), 100, " (answers)", style="--")
        ax.set_title("Code-switch rate (lower is better)")
        ax.set_ylabel("% not in the target language")
        ax.legend(fontsize=8)
        save(
            fig,
            "codeswitch",
            "Share of words and of answers not in the target language; error bars: 95% intervals "
            "(Wilson for answers, bootstrap over answers for words).",
        )

    if any(_get(ev["metrics"], "chrf", "to_target") for r in runs for ev in r.stages.values()):
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
        for ax, d, title in (
            (axes[0], "to_target", "English → target"),
            (axes[1], "to_english", "target → English"),
        ):
            stage_lines(ax, ("chrf", d, "chrf"))
            ax.set_title(f"chrF, {title} (higher is better)")
            ax.set_ylabel("chrF")
        axes[0].legend(fontsize=8)
        save(
            fig,
            "chrf",
            "chrF of the model's own translations of the held-out parallel pairs; error bars: 95% "
            "intervals (bootstrap over segments).",
        )

    premium = [
        (r.name, p[1]["premium"], _err({"premium": p[1]}, ("premium", "premium"), p[1]["premium"]))
        for r in runs
        if (p := r.last("premium"))
    ]
    if premium:
        from ltk.evaluate.premium import EXTEND_ABOVE, KEEP_BELOW

        fig, ax = plt.subplots(figsize=(6.5, 0.6 * len(premium) + 2.2))
        names, values, errs = zip(*premium, strict=True)
        ax.barh(range(len(values)), values, xerr=np.array(errs).T, capsize=3, color="#4c72b0")
        ax.set_yticks(range(len(values)), names)
        ax.axvline(1.0, color="grey", lw=1)
        ax.axvline(KEEP_BELOW, color="#dd8452", ls="--", lw=1, label=f"{KEEP_BELOW}x: keep below")
        ax.axvline(EXTEND_ABOVE, color="#c44e52", ls="--", lw=1, label=f"{EXTEND_ABOVE}x: extend above")
        for i, v in enumerate(values):
            ax.text(v, i, f" {v:.2f}x", va="center")
        ax.set_xlim(0, max(EXTEND_ABOVE + 0.5, max(values) * 1.15))
        ax.set_title("Tokenizer premium: target tokens / English tokens")
        ax.legend(fontsize=8, loc="lower right")
        save(fig, "premium", "Tokens the target language needs relative to English for the same content.")

    judged = [(r.name, j[0], j[1]) for r in runs if (j := r.last("judge"))]
    if judged:
        axes_names = list(judged[0][2]["scores"])
        fig, ax = plt.subplots(figsize=(8, 3.8))
        width = 0.8 / len(judged)
        for i, (name, stage, j) in enumerate(judged):
            ys = [j["scores"].get(a) or 0.0 for a in axes_names]
            errs = [
                _err({"judge": j}, ("judge", "scores", a), y) for a, y in zip(axes_names, ys, strict=True)
            ]
            ax.bar(
                [k + i * width for k in range(len(axes_names))], ys, width, yerr=np.array(errs).T, capsize=3,
                label=f"{name} ({stage})",
            )  # fmt: skip
        ax.set_xticks([k + width * (len(judged) - 1) / 2 for k in range(len(axes_names))], axes_names)
        ax.set_ylim(0, 3)
        ax.set_ylabel("mean score (0-3)")
        ax.set_title("LLM judge, five axes (higher is better)")
        ax.legend(fontsize=8)
        save(fig, "judge", "Mean judge scores per axis (latest judged stage of each run), 95% intervals.")
    return out


# ---------------------------------------------------------------------------------------------- methods
def methods(runs: list[Run]) -> list[str]:
    """One line per metric saying how it was measured (taken from the eval JSONs themselves)."""
    lines: list[str] = []
    seen: set[str] = set()
    for run in runs:
        for ev in run.stages.values():
            met = ev["metrics"]
            b = _get(met, "bpb", "target", "method")
            if b and "bpb" not in seen:
                seen.add("bpb")
                lines.append(
                    f"Bits per byte: {b['formula']}; sliding window of {b['context_length']} tokens, stride "
                    f"{b['stride']}; each document scored separately, prefixed with the {b['document_prefix']} "
                    f"token; {met['bpb']['target']['documents']} target / {met['bpb']['english']['documents']} "
                    "English held-out documents."
                )
            c = _get(met, "codeswitch", "method")
            if c and "codeswitch" not in seen:
                seen.add("codeswitch")
                lines.append(
                    f"Code-switch: {c['prompts']} held-out prompts, {c['decoding']} decoding up to "
                    f"{c['max_new_tokens']} new tokens; words labelled by {c['word_labels']}. A line or "
                    "answer counts as switched when most of its words are not in the target language."
                )
            t = _get(met, "chrf", "method")
            if t and "chrf" not in seen:
                seen.add("chrf")
                lines.append(
                    f"Translation: {t['chrf']}; {t['bleu']}; {t['decoding']} decoding, {t['hypothesis']}."
                )
            p = _get(met, "premium", "method")
            if p and "premium" not in seen:
                seen.add("premium")
                lines.append(f"Tokenizer premium: {p['premium']}, {met['premium']['pairs']} pairs.")
            j = _get(met, "judge", "method")
            if j and "judge" not in seen:
                seen.add("judge")
                lines.append(
                    f"Judge: {j['judge']} with rubric {j['rubric']} (axes {', '.join(j['axes'])}, 0-3)."
                )
    return lines


INTERVAL_NOTE = (
    "Brackets: 95% intervals, from per-item scores (bits per byte: bootstrap over documents; chrF/BLEU: "
    "bootstrap over segments; code-switch answers: Wilson over answers; judge: bootstrap over prompts; "
    "premium: bootstrap over pairs). A value without brackets comes from an eval file written before "
    "intervals were stored."
)
CHANGES_NOTE = (
    "Each difference is B - A on the items both evaluations scored (paired bootstrap, 1000 resamples, "
    "fixed seed), so item difficulty cancels; a change whose interval contains 0 cannot be told from noise."
)


# ---------------------------------------------------------------------------------------------- writers
def _md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;font-size:.85em;margin:.6em 0;display:block;overflow-x:auto}
th,td{border:1px solid #ccc;padding:.3em .5em;text-align:right;white-space:nowrap}
th{white-space:normal;vertical-align:bottom;min-width:4.5em}
th{background:#f3f5f8}td:first-child,td:nth-child(2),th:first-child,th:nth-child(2){text-align:left}
tr:nth-child(even) td{background:#fafafa}figure{margin:1em 0}figure img{max-width:100%;border:1px solid #eee}
figcaption{color:#555;font-size:.9em}.muted{color:#666;font-size:.9em}code{background:#f3f3f3;padding:0 .2em}
"""


def run_summary(run: Run) -> str:
    first = next(iter(run.stages.values()))["meta"]
    lang = first.get("language", {})
    return (
        f"{run.name}: {', '.join(run.stages)}; language {lang.get('name', '?')} "
        f"({lang.get('flores') or lang.get('code', '?')}); build {first.get('build_dir', '?')}"
    )


def advice_lines(runs: list[Run]) -> list[str]:
    return [f"{r.name}: {p[1]['advice']['text']}" for r in runs if (p := r.last("premium"))]


def write_report(run_paths: list[str | Path], out: str | Path) -> dict[str, Path]:
    """Write report.md (+ plots/*.png), report.html (self-contained) and model card(s) into ``out``."""
    if not run_paths:
        raise UsageError("give at least one run folder: ltk report runs/<name> [runs/<other> ...] --out DIR")
    runs = [load_run(p) for p in run_paths]
    unique_names(runs)
    out = Path(out)
    (out / "plots").mkdir(parents=True, exist_ok=True)
    header, rows = results_table(runs)
    change_header, change_rows = changes_table(runs)
    plots = _plots(runs)
    method_lines = methods(runs)
    advice = advice_lines(runs)
    title = "ltk evaluation report: " + ", ".join(r.name for r in runs)

    for name, (_, png) in plots.items():
        atomic_write_bytes(out / "plots" / f"{name}.png", png)

    md = [f"# {title}", "", "## Runs", "", *(f"- {run_summary(r)}" for r in runs), "", "## Results", ""]
    md += [_md_table(header, rows), "", INTERVAL_NOTE, ""]
    if change_rows:
        md += ["## Paired differences", "", CHANGES_NOTE, "", _md_table(change_header, change_rows), ""]
    for name, (caption, _) in plots.items():
        md += [f"![{name}](plots/{name}.png)", "", f"*{caption}*", ""]
    if advice:
        md += ["## Vocabulary advice", "", *(f"- {a}" for a in advice), ""]
    md += ["## Method", "", *(f"- {m}" for m in method_lines), ""]
    atomic_write_text(out / "report.md", "\n".join(md))

    figures = "".join(
        f'<figure><img alt="{name}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        for name, (caption, png) in plots.items()
    )
    page = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        '<p class="muted">Generated by <code>ltk report</code>. Everything on this page is embedded.</p>',
        "<h2>Runs</h2><ul>" + "".join(f"<li>{html.escape(run_summary(r))}</li>" for r in runs) + "</ul>",
        "<h2>Results</h2>",
        _html_table(header, rows),
        f'<p class="muted">{html.escape(INTERVAL_NOTE)}</p>',
        (
            "<h2>Paired differences</h2>"
            + f'<p class="muted">{html.escape(CHANGES_NOTE)}</p>'
            + _html_table(change_header, change_rows)
        )
        if change_rows
        else "",
        "<h2>Plots</h2>" + figures if figures else "",
        ("<h2>Vocabulary advice</h2><ul>" + "".join(f"<li>{html.escape(a)}</li>" for a in advice) + "</ul>")
        if advice
        else "",
        "<h2>Method</h2><ul>" + "".join(f"<li>{html.escape(m)}</li>" for m in method_lines) + "</ul>",
        "</body></html>",
    ]
    atomic_write_text(out / "report.html", "\n".join(page))

    written = {"markdown": out / "report.md", "html": out / "report.html"}
    for run in runs:
        card_name = "MODEL_CARD.md" if len(runs) == 1 else f"MODEL_CARD.{run.name.replace('/', '_')}.md"
        atomic_write_text(out / card_name, model_card(run))
        written[f"card:{run.name}"] = out / card_name
    for name in plots:
        written[f"plot:{name}"] = out / "plots" / f"{name}.png"
    return written


# -------------------------------------------------------------------------------------------- model card
def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text("utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def collect_licences(node: Any, found: dict[str, str], context: str = "") -> None:
    """Every (name, licence) pair anywhere in a manifest, whatever its exact layout."""
    if isinstance(node, dict):
        licence = node.get("licence") or node.get("license")
        if isinstance(licence, str):
            name = (
                node.get("name") or node.get("what") or node.get("source") or node.get("dataset") or context
            )
            name = name or "data"
            found.setdefault(str(name), licence)
        for key, value in node.items():
            if isinstance(value, str) and key in ("licences", "licenses"):
                found.setdefault(context or "data", value)
            elif isinstance(value, dict) and key in ("licences", "licenses"):
                for name, lic in value.items():
                    if isinstance(lic, str):
                        found.setdefault(str(name), lic)
            else:
                collect_licences(
                    value, found, key if isinstance(key, str) and isinstance(value, dict) else context
                )
    elif isinstance(node, list):
        for item in node:
            collect_licences(item, found, context)


def find_recipe(run: Run) -> Path | None:
    root = run.path if run.path.is_dir() else run.path.parent
    for candidate in [root / "recipe.yml", *sorted(root.glob("*/recipe.yml")), *sorted(root.glob("*.yml"))]:
        if candidate.is_file():
            return candidate
    return None


def card_results(run: Run) -> list[str]:
    """One line per stage and number: value, 95% interval, how many items and which unit, method."""
    lines = []
    for stage, ev in run.stages.items():
        met = ev["metrics"]
        for name, path, spec in COLUMNS:
            value = _get(met, *path)
            if value is None:
                continue
            found = interval_of(met, path)
            text = f"- {stage}, {name}: {_fmt_ci(met, path, spec)}"
            if found and found.get("ci"):
                text += f" (95% interval, {found['method']} over {found['n']} {found['unit']})"
            elif found:
                text += f" ({found['n']} {found['unit']}: too few for an interval)"
            else:
                text += " (no interval stored)"
            lines.append(text)
    return lines


HUB_ID_RE = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
# Licences that put no condition on a model trained with the data (the weights' own licence then governs).
PERMISSIVE = {"mit", "apache-2.0", "bsd-2-clause", "bsd-3-clause", "cc0-1.0", "unlicense", "isc", "odc-by"}


def collect_datasets(node: Any, found: set[str]) -> None:
    """Hub dataset ids (``owner/name``) named anywhere in a manifest, for the card's ``datasets``."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "dataset" and isinstance(value, str) and HUB_ID_RE.match(value):
                found.add(value)
            else:
                collect_datasets(value, found)
    elif isinstance(node, list):
        for item in node:
            collect_datasets(item, found)


def resolve_licence(data: dict[str, str], base_licence: str | None) -> str:
    """The card's ``license``: non-commercial anywhere -> cc-by-nc-4.0; data all permissive and the base's
    licence known -> the base's; anything else (unknown data, share-alike, mixed) -> ``other``, with the
    licences listed in the card for a person to judge."""
    values = [*data.values(), *([base_licence] if base_licence else [])]
    if any("nc" in v.lower().replace("-", " ").split() for v in values):
        return "cc-by-nc-4.0"
    if data and base_licence and all(v.lower() in PERMISSIVE for v in data.values()):
        return base_licence.lower()
    return "other"


def model_card(run: Run, *, meta: dict[str, Any] | None = None) -> str:
    """A Hugging Face README: YAML front matter, data, recipe, results, licences that carry over.

    ``meta`` (an eval JSON's ``meta`` layout: language, build_dir, model_requested) describes a run that has
    no evaluation yet, as ``ltk export`` may be given.
    """
    import yaml

    stages = list(run.stages.values())
    meta = stages[-1]["meta"] if stages else dict(meta or {})
    base_meta = stages[0]["meta"] if stages else meta
    lang = meta.get("language", {})
    build_dir = Path(meta.get("build_dir", ""))
    manifests = {
        name: m
        for name, m in (
            ("corpus", _read_json(build_dir / "corpus" / "manifest.json")),
            ("instructions", _read_json(build_dir / "instructions" / "manifest.json")),
        )
        if m
    }
    licences: dict[str, str] = {}
    datasets: set[str] = set()
    for m in manifests.values():
        collect_licences(m, licences)
        collect_datasets(m, datasets)
    uses_nllb = "nllb" in json.dumps(manifests.get("instructions", {})).lower()
    carried = dict(sorted(licences.items()))
    if uses_nllb:
        carried["NLLB-200 translations (instruction data)"] = NLLB_LICENCE
    non_commercial = any("nc" in lic.lower().replace("-", " ").split() for lic in carried.values())
    base_model = base_meta.get("model_requested") or base_meta.get("model")
    base_licence = None
    if base_model in EMBEDDED_HUB_IDS:
        base_model, base_licence = EMBEDDED_HUB_IDS[base_model]
    front: dict[str, Any] = {
        "language": [lang.get("iso639_1") or lang.get("iso639_3") or lang.get("code", "und")],
        "license": resolve_licence(carried, base_licence),
        "tags": ["ltk", "language-transfer", "continual-pretraining", "instruction-tuning"],
        "pipeline_tag": "text-generation",
    }
    if datasets:
        front["datasets"] = sorted(datasets)
    if (
        base_model
        and not Path(base_model).is_absolute()
        and HUB_ID_RE.match(base_model)
        and not Path(base_model).exists()
    ):
        front["base_model"] = base_model
    header, rows = results_table([run]) if stages else ([], [])
    lines = [
        "---",
        yaml.safe_dump(front, sort_keys=True, allow_unicode=True).strip(),
        "---",
        "",
        f"# {run.name}: {lang.get('name', 'target-language')} adaptation of {base_model or 'the base model'}",
        "",
        f'Adapted with ltk (language transfer kit) following Zhao et al. 2024, "LLaMA Beyond English": '
        f"continual pretraining on {lang.get('name', 'target')} text with English mixed back in, then "
        "instruction tuning on translated data. Stages evaluated: " + (", ".join(run.stages) or "none") + ".",
        "",
        "## Data",
        "",
    ]
    if manifests:
        for name, m in manifests.items():
            counts = {k: v for k, v in m.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
            shown = ", ".join(f"{k} {v}" for k, v in sorted(counts.items())[:8])
            lines.append(
                f"- {name}: `{build_dir / name / 'manifest.json'}`" + (f" ({shown})" if shown else "")
            )
        lines += [f"- source `{n}`: licence {lic}" for n, lic in sorted(licences.items())]
    else:
        lines.append(
            f"- build folder `{build_dir}` (no manifest found; the data's licences must be added by hand)"
        )
    lines += ["", "## Recipe", ""]
    recipe = find_recipe(run)
    if recipe:
        text = recipe.read_text("utf-8")
        lines += [f"From `{recipe}`:", "", "```yaml", text.strip()[:4000], "```"]
    else:
        lines.append("No recipe file found in the run folder (ltk train writes `recipe.yml` there).")
    if stages:
        lines += ["", "## Results", "", _md_table(header, rows), "", INTERVAL_NOTE, ""]
        lines += ["Each number with its 95% interval and sample size:", "", *card_results(run), ""]
        lines += [*(f"- {m}" for m in methods([run])), ""]
    else:
        lines += [
            "",
            "## Results",
            "",
            "Not evaluated yet: `ltk eval` writes the numbers this card shows.",
            "",
        ]
    lines += ["## Licences that carry over", ""]
    if carried:
        lines += [f"- {n}: {lic}" for n, lic in carried.items()]
    else:
        lines.append("- none recorded in the build manifests: check every dataset's licence by hand")
    lines.append(f"- base model {base_model or '(see its model card)'}: {base_licence or 'its own licence'}")
    if non_commercial:
        lines += ["", "Some data or translations are licensed non-commercially (NC): so is this model."]
    lines += [
        "",
        "## Limitations",
        "",
        "Small evaluation sets; judge scores come from an LLM and are noisy; code-switch detection is "
        "lexicon- and language-ID based and can miss words shared by both languages.",
        "",
    ]
    return "\n".join(lines)
