"""The report's two files: report.json (every number, for scripts) and report.html (for people).

The HTML is one self-contained file: styles inline, charts as base64 PNG `<img>`s (plots.py), no
script, no link to anything, so it opens in any browser, offline, and can be mailed as it is.  Every
text from the data or a model is HTML-escaped.  The run's training curves come from its metrics.jsonl.
Knows the report's layout; the numbers come in as a plain dict (runner.py builds it).
"""

from __future__ import annotations

import base64
import html
import json
import math
from pathlib import Path
from typing import Any

from .plots import BASE_COLOUR, EVAL_COLOUR, TUNED_COLOUR, Series, bar_chart, line_chart

MAX_CURVE_POINTS = 600  # a long run's curve is thinned to this many points (every n-th step)


def training_curves(metrics_file: Path) -> dict[str, list[list[float]]]:
    """{"loss": [[step, loss], ...], "eval_loss": [...]} from a run's metrics.jsonl (broken lines skipped)."""
    curves: dict[str, list[list[float]]] = {"loss": [], "eval_loss": []}
    if not metrics_file.is_file():
        return curves
    for line in metrics_file.read_text(encoding="utf-8").splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue  # a line cut short by a crash
        if event.get("event") == "step" and event.get("loss") is not None:
            curves["loss"].append([event["step"], event["loss"]])
        elif event.get("event") == "eval" and event.get("eval_loss") is not None:
            curves["eval_loss"].append([event["step"], event["eval_loss"]])
    return curves


def _thin(points: list[list[float]]) -> list[list[float]]:
    every = max(1, math.ceil(len(points) / MAX_CURVE_POINTS))
    return points[::every]


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _num(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value:.{digits}f}" if isinstance(value, float) else html.escape(str(value))


def _swatch(colour: tuple[int, int, int], words: str) -> str:
    return f'<span class="key" style="background:rgb{colour}"></span>{html.escape(words)}'


def _learned(report: dict[str, Any]) -> str:
    learned = report["learned"]
    rows, groups = [], []
    for part, words in (
        ("held_out", "Held-out rows"),
        ("training", "Training rows"),
        ("probe", "General text"),
    ):
        entry = learned.get(part) if part != "probe" else report.get("forgot")
        if not entry:
            continue
        base, tuned = entry["base"], entry["tuned"]
        rows.append(
            f"<tr><td>{words}</td><td>{entry['base']['rows']}</td><td>{_num(base['loss'])}</td>"
            f"<td>{_num(tuned['loss'])}</td><td>{_num(base['perplexity'], 2)}</td><td>{_num(tuned['perplexity'], 2)}</td></tr>"
        )
        groups.append([base["loss"], tuned["loss"]])
    png, top = bar_chart(groups, [BASE_COLOUR, TUNED_COLOUR])
    return (
        "<h2>Learned</h2>"
        f"<p>{html.escape(learned['summary'])}</p>"
        "<table><tr><th>Rows</th><th>Count</th><th>Base loss</th><th>Tuned loss</th>"
        "<th>Base perplexity</th><th>Tuned perplexity</th></tr>" + "".join(rows) + "</table>"
        f"<figure>{_img(png, 'Loss of base and tuned, by rows')}<figcaption>Loss (lower is better), "
        f"0 to {top:.2f}, in the order of the table: {_swatch(BASE_COLOUR, 'base')} {_swatch(TUNED_COLOUR, 'tuned')}"
        "</figcaption></figure>"
    )


def _answers(report: dict[str, Any]) -> str:
    answers = report["answers"]
    means = answers["means"]
    head = f"<h2>Answers side by side</h2><p>{html.escape(answers['source'])}; greedy decoding, seed {answers['seed']}.</p>"
    if means["base"] and means["tuned"]:
        head += (
            "<table><tr><th>Mean score</th><th>Base</th><th>Tuned</th></tr>"
            + "".join(
                f"<tr><td>{label}</td><td>{_num(means['base'][key])}</td><td>{_num(means['tuned'][key])}</td></tr>"
                for key, label in (
                    ("exact_match", "Exact match"),
                    ("token_f1", "Token F1"),
                    ("rouge_l", "ROUGE-L"),
                )
            )
            + "</table>"
        )
        scored = [p for p in answers["pairs"] if p["base_scores"]]
        png, top = bar_chart(
            [[p["base_scores"]["rouge_l"], p["tuned_scores"]["rouge_l"]] for p in scored],
            [BASE_COLOUR, TUNED_COLOUR],
        )
        head += (
            f"<figure>{_img(png, 'ROUGE-L of each answer')}<figcaption>ROUGE-L per prompt (higher is better), 0 to "
            f"{top:.2f}, prompts in the order below: {_swatch(BASE_COLOUR, 'base')} {_swatch(TUNED_COLOUR, 'tuned')}"
            "</figcaption></figure>"
        )
    cards = []
    for p in answers["pairs"]:
        question = html.escape(" / ".join(m["content"] for m in p["prompt"] if m["role"] == "user"))
        ref = f"<p class='ref'><b>Reference:</b> {html.escape(p['reference'])}</p>" if p["reference"] else ""

        def side(name: str, text: str, scores: dict | None) -> str:
            score = (
                f"<div class='score'>EM {_num(scores['exact_match'], 0)} · F1 {_num(scores['token_f1'], 2)} · "
                f"ROUGE-L {_num(scores['rouge_l'], 2)}</div>"
                if scores
                else ""
            )
            return (
                f"<div class='side'><b>{name}</b><p>{html.escape(text) or '<i>(empty)</i>'}</p>{score}</div>"
            )

        cards.append(
            f"<div class='card'><p class='q'>{question} <span class='where'>{html.escape(p['where'])}</span></p>{ref}"
            f"<div class='sides'>{side('Base', p['base'], p['base_scores'])}{side('Tuned', p['tuned'], p['tuned_scores'])}</div></div>"
        )
    return head + "".join(cards)


def _forgot(report: dict[str, Any]) -> str:
    forgot = report.get("forgot")
    if not forgot:
        return ""
    level = forgot["verdict"]["level"]
    css = "warn" if level == "markedly worse" else "ok"
    return (
        "<h2>Forgot</h2>"
        f"<p class='{css}'>{html.escape(forgot['verdict']['words'])}</p>"
        f"<p class='small'>{html.escape(forgot['about'])}</p>"
    )


def _judge(report: dict[str, Any]) -> str:
    judge = report.get("judge")
    if not judge:
        return ""
    if judge["win_rate"] is None:
        rate = "No verdict could be read, so there is no win rate."
    else:
        low, high = judge["interval_95"]
        rate = f"Tuned model's win rate: {judge['win_rate']:.0%} (95% interval {low:.0%} to {high:.0%})."
    rows = "".join(
        f"<tr><td>{html.escape(v['where'])}</td><td>{'tuned' if v['tuned_first'] else 'base'}</td>"
        f"<td>{html.escape(v['winner'])}</td><td>{html.escape(v['reason'])}</td></tr>"
        for v in judge["verdicts"]
    )
    return (
        f"<h2>Judge</h2><p>{html.escape(judge['judge'])} compared the answers, each pair twice (both orders). {rate} "
        f"Tuned won {judge['tuned_wins']}, base won {judge['base_wins']}, {judge['ties']} ties, "
        f"{judge['unparsable']} unreadable.</p>"
        "<table><tr><th>Prompt</th><th>Shown first</th><th>Winner</th><th>Reason</th></tr>"
        + rows
        + "</table>"
    )


def _run(report: dict[str, Any]) -> str:
    curves = report["training_curves"]
    data = report["data"]
    parts = [
        "<h2>The run</h2><h3>Data</h3><ul>",
        f"<li>Trained on {html.escape(data['dataset'])}</li>",
        f"<li>Held out: {html.escape(data['held_out'])}; {data['held_out_rows']} scored</li>",
        f"<li>Training rows scored: {data['training_rows_scored']}</li>",
        f"<li>Prompts answered: {data['prompts_answered']}, from {html.escape(data['prompts'])}</li></ul>",
    ]
    series = []
    if curves["loss"]:
        pts = _thin(curves["loss"])
        series.append(Series([p[0] for p in pts], [p[1] for p in pts], TUNED_COLOUR))
    if curves["eval_loss"]:
        series.append(
            Series([p[0] for p in curves["eval_loss"]], [p[1] for p in curves["eval_loss"]], EVAL_COLOUR)
        )
    if series:
        png, (x_lo, x_hi), (y_lo, y_hi) = line_chart(series)
        parts.append(
            f"<figure>{_img(png, 'Training loss by step')}<figcaption>Loss by step (steps {x_lo:.0f} to {x_hi:.0f}, "
            f"loss {y_lo:.2f} to {y_hi:.2f}): {_swatch(TUNED_COLOUR, 'training loss')} "
            f"{_swatch(EVAL_COLOUR, 'eval loss')}</figcaption></figure>"
        )
    settings = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{html.escape(str(v))}</td></tr>"
        for k, v in report["settings"].items()
    )
    timings = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{v:.1f} s</td></tr>" for k, v in report["timings"].items()
    )
    parts.append("<h3>Settings</h3><table>" + settings + "</table>")
    parts.append("<h3>Time each part took</h3><table>" + timings + "</table>")
    return "".join(parts)


STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:960px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{margin-top:1.8em;border-bottom:1px solid #ddd}table{border-collapse:collapse;margin:.6em 0}
td,th{border:1px solid #ddd;padding:.3em .6em;text-align:left;vertical-align:top}img{max-width:100%;display:block}
figure{margin:1em 0}figcaption,.small,.where{color:#666;font-size:.9em}.key{display:inline-block;width:.9em;height:.9em;
margin:0 .3em 0 .6em;vertical-align:middle}.card{border:1px solid #ddd;border-radius:6px;padding:.6em;margin:.8em 0}
.sides{display:flex;gap:1em}.side{flex:1}.q{font-weight:600}.score{font-size:.85em;color:#555}.warn{color:#a33;font-weight:600}
.ok{color:#275}
"""


def render_html(report: dict[str, Any]) -> str:
    title = f"Did it work? {report['run_name']}"
    body = "".join((_learned(report), _answers(report), _forgot(report), _judge(report), _run(report)))
    return (
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
        f"<p class='small'>Report made {html.escape(report['made_at'])} from {html.escape(report['run_dir'])}</p>"
        f"{body}</body></html>"
    )


def write_report(folder: Path, report: dict[str, Any]) -> None:
    """report.json and report.html into `folder` (a fresh temporary folder: the runner renames it)."""
    (folder / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    (folder / "report.html").write_text(render_html(report), encoding="utf-8")
