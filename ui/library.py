"""The library panel's HTML: the indexed documents, the question scope, the delete question.

Every value (titles and issuers come from uploaded files too) is escaped by ``ui.render.esc``;
each title opens the document in the source view, like a citation does.
"""

from __future__ import annotations

from ui.render import esc, source_url

ORIGIN = {"corpus": "文件集 corpus", "upload": "上传 upload"}


def _when(iso: str | None) -> str:
    """``2026-11-23T17:05:12+00:00`` → ``2026-11-23 17:05 UTC`` (the stored value in the tooltip)."""
    if not iso:
        return ""
    return f'<span title="{esc(iso)}">{esc(iso[:16].replace("T", " "))} UTC</span>'


def render_library(infos) -> str:
    """A table of ``retriever.DocumentInfo`` records, one row per document."""
    if not infos:
        return '<p class="pq-library-empty">索引为空 The index holds no documents.</p>'
    rows = []
    for i in infos:
        origin = esc(ORIGIN.get(i.origin, i.origin))
        if i.uploaded_at:
            origin += f"<br><small>{_when(i.uploaded_at)}</small>"
        rows.append(
            f'<tr data-doc-id="{esc(i.doc_id)}"><td><a class="pq-lib-doc" href="{esc(source_url(i.doc_id))}" '
            f'target="_blank" rel="noopener">{esc(i.title)}</a><br><code>{esc(i.doc_id)}</code></td>'
            f"<td>{esc(i.issuer) or '–'}</td><td>{esc(i.date) or '–'}</td><td>{esc(i.script)}</td>"
            f'<td class="pq-num">{i.passages}</td><td>{origin}</td></tr>')
    head = ("<tr><th>标题 Title</th><th>发布机关 Issuer</th><th>日期 Date</th><th>文字 Script</th>"
            "<th>段落 Passages</th><th>来源 Origin</th></tr>")
    return f'<table class="pq-library"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>'


def render_scope(titles: list[str]) -> str:
    """The line above the chat that says which documents the next questions search."""
    if not titles:
        return ""
    return ('<div class="pq-scope">范围 Scope: ' + "; ".join(f"<b>{esc(t)}</b>" for t in titles)
            + " <small>(questions search only these documents)</small></div>")


def scope_chip(titles: list[str]) -> str:
    """The same, above one answer in the chat: the scope it was asked in."""
    if not titles:
        return ""
    return '<div class="pq-scope-chip">范围 Scope: ' + "; ".join(esc(t) for t in titles) + "</div>"


def choices(infos) -> list[tuple[str, str]]:
    """(label, doc_id) pairs for the scope and delete pickers."""
    return [(f"{i.title} · {i.doc_id}" if i.origin == "upload" else i.title, i.doc_id) for i in infos]
