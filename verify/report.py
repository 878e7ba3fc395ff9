"""The verification report: runs every claim, caches each finished one, writes Markdown, a
self-contained HTML, JSON and PNG figures into the output folder.

Resumable: every finished claim is written to ``OUT/.cache/<profile>-seed<seed>/<claim>.json`` at
once and the report files are rewritten after each claim, so an interrupted run keeps every finished
claim and a rerun resumes (``--fresh`` starts over). The cache is discarded when any source file of
the package changes.
"""
from __future__ import annotations

import base64
import dataclasses
import hashlib
import html
import json
import os
import shutil
from enum import Enum
from pathlib import Path

import numpy as np
from tqdm import tqdm

from verify import data_text, figures, meta
from verify.claims import all_claims
from verify.claims.base import ClaimOutcome, ClaimSpec, Context
from verify.instance import InstanceError


def _jsonable(obj):
    if dataclasses.is_dataclass(obj):
        return {f.name: _jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Enum):
        return obj.value
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        return float(obj) if np.isfinite(obj) else str(float(obj))
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.bool_,)):
        return bool(obj)
    return obj


def _write_atomic(path: Path, text: str | bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(text if isinstance(text, bytes) else text.encode())
    os.replace(tmp, path)


def _cache_key() -> dict:
    """Finished claims are reused only by the same code and data: a hash of every source file of the package
    and the sha256 of the sentiment data file (the real-model claims read it)."""
    root = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for path in sorted([*root.glob("theory/**/*.py"), *root.glob("verify/**/*.py")]):
        digest.update(path.relative_to(root).as_posix().encode() + path.read_bytes())
    return {"source_sha256": digest.hexdigest(), "data_sha256": data_text.data_sha256()}


def _open_cache(out_dir: Path, ctx: Context, fresh: bool) -> Path:
    cache = out_dir / ".cache" / f"{ctx.profile}-seed{ctx.seed}"
    key_file = cache / "key.json"
    if fresh or not key_file.exists() or json.loads(key_file.read_text()) != _cache_key():
        shutil.rmtree(cache, ignore_errors=True)
        cache.mkdir(parents=True)
        _write_atomic(key_file, json.dumps(_cache_key()))
    return cache


def _run_claim(spec: ClaimSpec, ctx: Context, cache: Path) -> dict:
    path = cache / f"{spec.id}.json"
    if path.exists():
        return json.loads(path.read_text())
    outcome: ClaimOutcome = spec.run(ctx)
    record = _jsonable(outcome) | {"section": spec.section}
    _write_atomic(path, json.dumps(record))
    return record


def generate(profile: str = "quick", out_dir: str | Path = "reports", seed: int = 0, device: str = "auto",
             fresh: bool = False, only: list[str] | None = None, progress: bool = True) -> dict:
    """Run the claims (all, or the ids in ``only``) and write the report; returns the report dict. Raises
    InstanceError (before writing anything) for an unknown profile or claim id, or an empty ``only``."""
    if profile not in ("quick", "full"):
        raise InstanceError(f"profile must be quick or full, got {profile!r}")
    known = [s.id for s in all_claims()]
    unknown = [c for c in only or () if c not in known]
    if unknown or only == []:
        raise InstanceError(f"only: unknown claim id(s) {', '.join(unknown) or '(none given)'}; the claim ids are "
                            f"{', '.join(known)}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ctx = Context(profile=profile, seed=seed, device=device)
    cache = _open_cache(out_dir, ctx, fresh)
    ctx.cache_dir = cache
    specs = [s for s in all_claims() if (s.id in only if only is not None else profile in s.profiles)]
    records: list[dict] = []
    info = meta.collect(seed, profile, device) | {
        "not_in_profile": [s.id for s in all_claims() if only is None and profile not in s.profiles]}
    drawn: dict[str, Path] = {}
    report = write_report(out_dir, info, records, pending=[s.id for s in specs], drawn=drawn)
    bar = tqdm(specs, desc="claims", unit="claim", disable=not progress)
    for spec in bar:
        bar.set_postfix_str(spec.id)
        records.append(_run_claim(spec, ctx, cache))
        report = write_report(out_dir, info, records, pending=[s.id for s in specs[len(records):]], drawn=drawn)
    return report


def _figure_files(out_dir: Path, records: list[dict], drawn: dict[str, Path]) -> dict[str, Path]:
    """{figure name: file} of every figure of ``records``; figures already in ``drawn`` (this run's earlier
    calls) are not drawn again, new ones are drawn and added to it."""
    fig_dir = out_dir / "figures"
    fig_dir.mkdir(exist_ok=True)
    for rec in records:
        for name, data in rec.get("figures", {}).items():
            if name not in drawn:
                drawn[name] = figures.draw(name, data, fig_dir / f"{name}.png")
    return {name: drawn[name] for rec in records for name in rec.get("figures", {})}


def write_report(out_dir: Path, info: dict, records: list[dict], pending: list[str] | None = None,
                 drawn: dict[str, Path] | None = None) -> dict:
    """Write report.json, report.md, report.html and figures for the finished ``records``.

    ``drawn``: figures already drawn by an earlier call of the same run (updated in place), so that writing
    the report after every claim draws each figure once."""
    pending = pending or []
    claims = [r["check"] | {"section": r["section"]} for r in records]
    controls = [c for r in records for c in r["controls"]]
    summary = {v: sum(c["verdict"] == v for c in claims) for v in ("HOLDS", "VIOLATED", "INCONCLUSIVE")}
    summary |= {"controls_caught": sum(c["caught"] for c in controls),
                "controls_missed": sum(not c["caught"] for c in controls), "pending": pending}
    report = {"meta": info, "summary": summary, "claims": claims, "controls": controls}
    figs = _figure_files(out_dir, records, {} if drawn is None else drawn)
    _write_atomic(out_dir / "report.json", json.dumps(report, indent=1))
    _write_atomic(out_dir / "report.md", render_markdown(report, {k: f"figures/{p.name}" for k, p in figs.items()}))
    _write_atomic(out_dir / "report.html", render_html(report, figs))
    return report


def _fmt(x) -> str:
    if isinstance(x, float):
        return f"{x:.4g}"
    return str(x)


#: entries of a list detail printed in report.md / report.html; longer lists (per-start end points) say how many
#: more there are, all of them in report.json
DETAILS_LIST_SHOWN = 12


def _scalars(value) -> bool:
    """A short list of numbers or strings, printed on one line."""
    return (isinstance(value, list) and len(value) <= DETAILS_LIST_SHOWN
            and not any(isinstance(v, (list, dict)) for v in value))


def _leaf(value) -> str | None:
    """The one-line text of a scalar or a short flat list; None for a detail that nests."""
    if _scalars(value):
        return ", ".join(map(_fmt, value)) if value else "(none)"
    if isinstance(value, (list, dict)):
        return None if value else "(none)"
    return _fmt(value)


def _inline(entry):
    """A list entry that is a flat dict (one record: an end point, a run) as one line; anything else unchanged."""
    if isinstance(entry, dict) and all(_leaf(v) is not None for v in entry.values()):
        return "; ".join(f"{k} {_leaf(v)}" for k, v in entry.items())
    return entry


def _detail_items(value) -> list[tuple[str | None, object]]:
    """(label or None, value) pairs of a dict or list detail, the list cut to :data:`DETAILS_LIST_SHOWN`."""
    if isinstance(value, dict):
        return list(value.items())
    items: list[tuple[str | None, object]] = [(None, _inline(v)) for v in value[:DETAILS_LIST_SHOWN]]
    if len(value) > DETAILS_LIST_SHOWN:
        items.append((None, f"… {len(value) - DETAILS_LIST_SHOWN} more (all {len(value)} in report.json)"))
    return items


def _details_lines(details, depth: int = 1) -> list[str]:
    """Markdown bullets of a claim's details, nested dicts and lists as indented sub-bullets."""
    pad, lines = "  " * depth, []
    for k, v in _detail_items(details):
        head, text = (f"{pad}- {k}:" if k is not None else f"{pad}-"), _leaf(v)
        lines += [f"{head} {text}"] if text is not None else [head] + _details_lines(v, depth + 1)
    return lines


def _details_html(details) -> str:
    """The same details as nested HTML lists."""
    items = []
    for k, v in _detail_items(details):
        text = _leaf(v)
        body = html.escape(text) if text is not None else _details_html(v)
        items.append(f"<li>{f'<i>{html.escape(str(k))}:</i> ' if k is not None else ''}{body}</li>")
    return f"<ul>{''.join(items)}</ul>"


#: what the report says beside each verdict about the check's power
POWER_FIELDS = (("power", "why this check could have failed"), ("resolution", "smallest planted error it resolves"))
CONTROLS_INTRO = ("Each is a planted false claim or wrong answer; its check must say VIOLATED. A *near_miss* control "
                  "breaks the claim's hypothesis by the smallest step that should matter, on the same instances and "
                  "code path (it shows power); a *gross* one is an error any check catches.")


def render_markdown(report: dict, figs: dict[str, str]) -> str:
    m, s = report["meta"], report["summary"]
    lines = ["# LoRA-in-the-NTK-regime verification report", "",
             f"Profile `{m['profile']}`, seed {m['seed']}, device {m['device']}, git `{m['git_revision']}`.",
             f"Command: `{m['command_line']}`", "",
             f"**{s['HOLDS']} HOLDS, {s['VIOLATED']} VIOLATED, {s['INCONCLUSIVE']} INCONCLUSIVE; "
             f"negative controls: {s['controls_caught']} caught, {s['controls_missed']} missed.**", ""]
    if s["pending"]:
        lines += [f"Not finished yet (run again to resume): {', '.join(s['pending'])}", ""]
    if m.get("not_in_profile"):
        lines += [f"Run only by `--profile full`: {', '.join(m['not_in_profile'])}", ""]
    sections: dict[str, list[dict]] = {}
    for c in report["claims"]:
        sections.setdefault(c["section"], []).append(c)
    for section, claims in sections.items():
        lines += [f"## {section}", "", "| claim | reference | verdict | margin | seconds |", "|---|---|---|---|---|"]
        lines += [f"| `{c['id']}` | {c['reference']} | **{c['verdict']}** | {_fmt(c['margin'])} | {c['seconds']:.1f} |"
                  for c in claims]
        lines.append("")
        for c in claims:
            lines += [f"### `{c['id']}` — {c['verdict']}", "", c["statement"], "",
                      f"- instances: {', '.join(c['instances'])}"]
            lines += [f"- {label}: {c[key]}" for key, label in POWER_FIELDS if c.get(key)]
            lines += _details_lines(c["details"]) + [""]
    lines += ["## Negative controls", "", CONTROLS_INTRO, "",
              "| control | claim | kind | planted | caught |", "|---|---|---|---|---|"]
    lines += [f"| `{c['id']}` | `{c['claim']}` | {c['kind']} | {c['description']} | "
              f"{'caught' if c['caught'] else '**MISSED**'} |" for c in report["controls"]]
    lines += ["", "## Figures", ""] + [f"![{name}]({path})" for name, path in figs.items()]
    lines += ["", "## Versions", ""] + [f"- {k}: {v}" for k, v in m["versions"].items()] + [""]
    return "\n".join(lines)


def render_html(report: dict, figs: dict[str, Path]) -> str:
    """A self-contained page: the same content as the Markdown, figures embedded as base64 PNG."""
    e = html.escape
    m, s = report["meta"], report["summary"]
    colour = {"HOLDS": "#1a7f37", "VIOLATED": "#cf222e", "INCONCLUSIVE": "#9a6700"}
    rows = "".join(
        f"<tr><td><code>{e(c['id'])}</code></td><td>{e(c['section'])}</td><td>{e(c['reference'])}</td>"
        f"<td style='color:{colour[c['verdict']]};font-weight:bold'>{c['verdict']}</td>"
        f"<td>{e(_fmt(c['margin']))}</td><td>{c['seconds']:.1f}</td><td>{e(c['statement'])}"
        + "".join(f"<br><i>{e(label)}:</i> {e(c[key])}" for key, label in POWER_FIELDS if c.get(key))
        + (_details_html(c["details"]) if c["details"] else "") + "</td></tr>"
        for c in report["claims"])
    ctrl = "".join(
        f"<tr><td><code>{e(c['id'])}</code></td><td><code>{e(c['claim'])}</code></td><td>{e(c['kind'])}</td>"
        f"<td>{e(c['description'])}</td>"
        f"<td style='color:{'#1a7f37' if c['caught'] else '#cf222e'}'>{'caught' if c['caught'] else 'MISSED'}</td></tr>"
        for c in report["controls"])
    imgs = "".join(
        f"<figure><img alt='{e(name)}' src='data:image/png;base64,{base64.b64encode(p.read_bytes()).decode()}'>"
        f"<figcaption>{e(name)}</figcaption></figure>" for name, p in figs.items())
    vers = "".join(f"<li>{e(k)}: {e(str(v))}</li>" for k, v in m["versions"].items())
    pending = f"<p>Not finished yet: {e(', '.join(s['pending']))}</p>" if s["pending"] else ""
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>LoRA NTK verification report</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:auto}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 6px;font-size:13px;vertical-align:top}}img{{max-width:100%}}</style></head><body>
<h1>LoRA-in-the-NTK-regime verification report</h1>
<p>Profile <code>{e(m['profile'])}</code>, seed {m['seed']}, device {e(m['device'])}, git <code>{e(m['git_revision'])}</code>.<br>
Command: <code>{e(m['command_line'])}</code></p>
<p><b>{s['HOLDS']} HOLDS, {s['VIOLATED']} VIOLATED, {s['INCONCLUSIVE']} INCONCLUSIVE; negative controls:
{s['controls_caught']} caught, {s['controls_missed']} missed.</b></p>{pending}
<h2>Claims</h2><table><tr><th>claim</th><th>section</th><th>reference</th><th>verdict</th><th>margin</th><th>seconds</th><th>statement</th></tr>{rows}</table>
<h2>Negative controls</h2><p>{e(CONTROLS_INTRO)}</p><table><tr><th>control</th><th>claim</th><th>kind</th><th>planted</th><th>caught</th></tr>{ctrl}</table>
<h2>Figures</h2>{imgs}<h2>Versions</h2><ul>{vers}</ul></body></html>"""
