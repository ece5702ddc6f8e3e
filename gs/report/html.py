"""Self-contained HTML pages for the Snakemake report: the results table (pandas), the
Markdown tables (markdown-it-py, GitHub table syntax) and the provenance page."""

from __future__ import annotations

import json
from html import escape
from pathlib import Path
from typing import Any, Mapping

_CSS = """
body { font-family: system-ui, sans-serif; margin: 1em; color: #222; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border-bottom: 1px solid #ddd; padding: 3px 8px; text-align: right; }
th { background: #f3f3f3; position: sticky; top: 0; }
td:nth-child(-n+4), th:nth-child(-n+4) { text-align: left; }
tr:hover td { background: #f8f8ff; }
p.note { font-size: 12px; color: #555; }
"""


def page(title: str, body: str) -> str:
    """One HTML document: ``title`` as its title and heading, the report's style, ``body``."""
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{escape(title)}</title>"
            f"<style>{_CSS}</style></head>\n<body>\n<h2>{escape(title)}</h2>\n{body}\n</body></html>\n")


def _cell(v: Any) -> str:
    if isinstance(v, float):
        if v != v:  # NaN
            return "–"
        return f"{v:.4g}" if abs(v) < 1e4 else f"{v:.0f}"
    return str(v)


def write_html_table(df, path: str | Path, *, title: str, table_id: str = "results-table") -> Path:
    """A page with the DataFrame ``df`` as a table (the report shows it in a frame)."""
    body = df.to_html(index=False, table_id=table_id, border=0, na_rep="–",
                      formatters={c: _cell for c in df.columns}, escape=True)
    path = Path(path)
    path.write_text(page(title, body))
    return path


def markdown_to_html(md: str, *, title: str, table_id: str) -> str:
    """A page with a Markdown table of :mod:`gs.report.tables` / :mod:`gs.report.bdrate`:
    ``**best**`` bold, ``<u>second</u>`` underlined, ``*paper*`` rows italic, the table's id
    ``table_id``, the text below it as notes. Raw HTML other than ``<u>`` is shown as text; the
    Markdown's own heading is left out (the page's title says it)."""
    from markdown_it import MarkdownIt

    parser = MarkdownIt("commonmark", {"html": False}).enable("table")
    kept, in_heading = [], False
    for tok in parser.parse(md):
        in_heading = in_heading or tok.type == "heading_open"
        if not in_heading:
            if tok.type == "table_open":
                tok.attrSet("id", table_id)
            elif tok.type == "paragraph_open":
                tok.attrSet("class", "note")
            kept.append(tok)
        in_heading = in_heading and tok.type != "heading_close"
    body = parser.renderer.render(kept, parser.options, {})
    return page(title, body.replace("&lt;u&gt;", "<u>").replace("&lt;/u&gt;", "</u>"))


def _pairs(d: Mapping[str, Any]) -> str:
    rows = "".join(f"<tr><td>{escape(str(k))}</td><td>{escape(str(v))}</td></tr>" for k, v in d.items())
    return f"<table>{rows}</table>"


def provenance_html(info: Mapping[str, Any]) -> str:
    """The provenance page: commit, versions, protocol, configuration, and the runs that
    started from the baseline's saved state."""
    def pre(value: Any) -> str:
        return f"<pre>{escape(json.dumps(value, indent=2, default=str))}</pre>"

    body = [f"<p>git commit: <code>{escape(str(info.get('git_commit')))}</code></p>",
            "<h3>Versions</h3>", _pairs(info.get("versions") or {}),
            "<h3>Protocol</h3>", pre(info.get("protocol")),
            "<h3>Configuration</h3>", pre(info.get("config"))]
    shared = [r for r in info.get("runs") or [] if r.get("starts_from")]
    if shared:  # runs that did not train their first iterations themselves
        body += ["<h3>Shared training prefixes</h3>",
                 "<p>These runs start from the baseline's saved state instead of training the same "
                 "first iterations again:</p>",
                 _pairs({f"{r['dataset']}/{r['scene']}/{r['method']}/{r['variant']}":
                         f"{r['starts_from']['run']} at iteration {r['starts_from']['iteration']}" for r in shared})]
    return page("GS Bench: provenance", "\n".join(body))


__all__ = ["markdown_to_html", "page", "provenance_html", "write_html_table"]
