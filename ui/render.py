"""Answer, source and refusal rendering for the chat, and the JSON the API returns.

Every string that comes from a document (answer text, quotes, titles, sections, passage
text) or from a user goes through :func:`esc` before it is put into HTML; the only tags
in the output are the ones written here. The chat shows this HTML with Markdown turned
off, so a ``*`` or ``$$`` in a policy text is shown as itself instead of being parsed.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
from urllib.parse import quote

MARKER = re.compile(r"\[(\d+)\]")
QUOTE_CHARS = 240  # a "possibly related" passage is cut to this many characters in the chat


def esc(value: object) -> str:
    """HTML-escape anything (quotes included, so it is safe in attributes too)."""
    return html.escape("" if value is None else str(value), quote=True)


def esc_lines(value: object) -> str:
    """Escaped text whose line breaks survive in HTML."""
    return esc(value).replace("\r\n", "\n").replace("\n", "<br>")


def source_url(doc_id: str, start: int | None = None, end: int | None = None) -> str:
    """The shareable address of a document in the source view, with the span to highlight.

    The id is percent-encoded whole (``/`` included), so it is one path segment and the
    server only ever looks it up as an id, never as a path.
    """
    url = f"/source/{quote(doc_id, safe='')}"
    if start is not None and end is not None and 0 <= start < end:
        url += f"?start={int(start)}&end={int(end)}#hl"
    return url


def citation_span(citation) -> tuple[int, int]:
    """The quoted sentence(s) when the QA stage located them, else the whole passage."""
    if citation.quote_start is not None and 0 <= citation.quote_start < citation.quote_end:
        return citation.quote_start, citation.quote_end
    return citation.hit.start, citation.hit.end


def citation_url(citation) -> str:
    start, end = citation_span(citation)
    return source_url(citation.hit.doc_id, start, end)


def _link(url: str, label_html: str, cls: str) -> str:
    return f'<a class="{cls}" href="{esc(url)}" target="_blank" rel="noopener">{label_html}</a>'


def _scores(hit) -> str:
    parts = [f"score {hit.score:.3f}"]
    if hit.dense_score is not None:
        parts.append(f"dense {hit.dense_score:.3f}")
    if hit.bm25_score is not None:
        parts.append(f"bm25 {hit.bm25_score:.2f}")
    return f'<span class="pq-scores">{esc(" · ".join(parts))}</span>'


def _shorten(text: str, limit: int = QUOTE_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def link_markers(escaped_text: str, urls: dict[int, str]) -> str:
    """Turn each ``[n]`` of an already escaped answer into a link to citation n's span."""

    def repl(m: re.Match) -> str:
        url = urls.get(int(m.group(1)))
        return _link(url, m.group(0), "pq-cite") if url else m.group(0)

    return MARKER.sub(repl, escaped_text)


def render_pending(partial: str, reading=None) -> str:
    """The answer while it streams: plain escaped text (links are added once it is complete),
    above the passages being read, which are shown as soon as they are retrieved."""
    body = esc_lines(partial) if partial else '<span class="pq-wait">…</span>'
    html = f'<div class="pq-answer pq-streaming">{body}</div>'
    if reading is not None and reading.hits:
        items = []
        for hit in reading.hits:
            head = _link(source_url(hit.doc_id, hit.start, hit.end), esc(hit.title or hit.doc_id), "pq-src")
            items.append(f"<li>{_source_item(head, hit, _shorten(hit.text, 160), False)}</li>")
        html += (f'<div class="pq-reading"><div class="pq-label">正在阅读 Reading {len(reading.hits)} passages'
                 f'</div><ul>{"".join(items)}</ul></div>')
    return html


def _source_item(head: str, hit, quote: str, show_scores: bool) -> str:
    """One listed passage: linked heading, section path, quote, optional scores."""
    section = f'<div class="pq-section">{esc(hit.section)}</div>' if hit.section else ""
    scores = _scores(hit) if show_scores else ""
    return f'{head}{section}<blockquote class="pq-quote">{esc(quote)}</blockquote>{scores}'


def render_sources(citations, show_scores: bool = False) -> str:
    """Numbered sources under an answer: title (a link to the span), section path, quote."""
    if not citations:
        return ""
    items = []
    for c in citations:
        hit = c.hit
        head = _link(citation_url(c), f"[{c.n}] {esc(hit.title or hit.doc_id)}", "pq-src")
        body = _source_item(head, hit, _shorten(c.quote or hit.text, 600), show_scores)
        items.append(f'<li value="{int(c.n)}">{body}</li>')
    return f'<div class="pq-sources"><div class="pq-label">来源 Sources</div><ol>{"".join(items)}</ol></div>'


def render_related(hits, show_scores: bool = False) -> str:
    """The "possibly related" passages shown with a refusal, each linked to its span."""
    if not hits:
        return ""
    items = []
    for hit in hits:
        head = _link(source_url(hit.doc_id, hit.start, hit.end), esc(hit.title or hit.doc_id), "pq-src")
        items.append(f"<li>{_source_item(head, hit, _shorten(hit.text), show_scores)}</li>")
    return (f'<div class="pq-related"><div class="pq-label">可能相关的段落 Possibly related</div>'
            f'<ul>{"".join(items)}</ul></div>')


def render_answer(answer, show_scores: bool = False) -> str:
    """A finished answer as chat HTML: linked [n] markers and the sources, or a refusal."""
    if answer.refused:
        return (f'<div class="pq-refusal" role="note"><span class="pq-refusal-tag">未找到答案 No answer in the '
                f'documents</span><div>{esc_lines(answer.text)}</div></div>'
                + render_related(answer.related, show_scores))
    urls = {c.n: citation_url(c) for c in answer.citations}
    body = link_markers(esc_lines(answer.text), urls)
    html = f'<div class="pq-answer">{body}</div>' + render_sources(answer.citations, show_scores)
    return html + (_timings(answer) if show_scores else "")


def _timings(answer) -> str:
    """Which generator wrote the answer and how long each stage took (shown with the scores)."""
    stages = " · ".join(f"{name} {seconds:.2f}s" for name, seconds in answer.timings.items())
    return f'<div class="pq-scores">{esc(answer.generator)}{" · " + esc(stages) if stages else ""}</div>'


def render_error(message: str) -> str:
    return f'<div class="pq-error">{esc(message)}</div>'


def render_user(question: str) -> str:
    """The user's own message, escaped like everything else (the chat renders HTML)."""
    return esc_lines(question)


# -- API ------------------------------------------------------------------------------
def _hit_json(hit, start: int, end: int) -> dict:
    return {
        "doc_id": hit.doc_id,
        "title": hit.title,
        "section": hit.section,
        "start": start,
        "end": end,
        "url": source_url(hit.doc_id, start, end),
        "score": hit.score,
        "dense_score": hit.dense_score,
        "bm25_score": hit.bm25_score,
    }


def answer_json(answer) -> dict:
    """The answer as plain JSON for API clients (raw text: a client escapes for its own medium)."""
    sources = []
    for c in answer.citations:
        start, end = citation_span(c)
        sources.append({"n": c.n, "quote": c.quote, **_hit_json(c.hit, start, end)})
    related = [{"text": h.text, **_hit_json(h, h.start, h.end)} for h in answer.related]
    return {
        "question": answer.question,
        "answer": answer.text,
        "refused": answer.refused,
        "query": answer.query,
        "generator": answer.generator,
        "checks": dict(getattr(answer, "checks", {}) or {}),
        "sources": sources,
        "related": related,
        "timings": dict(answer.timings),
    }


# -- the source view -------------------------------------------------------------------
# Scrolls the span into view even when the link had no #hl fragment; the scroll-margin in
# the style keeps it clear of the sticky header in both cases.
SCROLL_SCRIPT = "var m=document.getElementById('hl');if(m){m.scrollIntoView({block:'start'});}"
# Only the one inline script above may run on a source page: even if some text escaped the
# escaping, the browser would refuse to execute it.
SOURCE_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'none'; base-uri 'none'; form-action 'none'; "
    "script-src 'sha256-" + base64.b64encode(hashlib.sha256(SCROLL_SCRIPT.encode()).digest()).decode() + "'"
)
LANGS = {"Hans": "zh-Hans", "Hant": "zh-Hant", "Latn": "en"}
PAGE_STYLE = """
body{margin:0;font-family:"Noto Sans CJK SC","Noto Sans SC","PingFang SC","Microsoft YaHei",system-ui,sans-serif;
 color:#1f2328;background:#fafafa;line-height:1.75}
header{background:#fff;border-bottom:1px solid #ddd;padding:.6rem 1rem}
@media (min-width:700px){header{position:sticky;top:0;z-index:1}}
header h1{font-size:1.15rem;margin:.2rem 0}
.meta,.section{color:#57606a;font-size:.9rem;margin:.1rem 0}
main{max-width:52rem;margin:0 auto;padding:1rem}
.doc{white-space:pre-wrap;overflow-wrap:anywhere;font-size:1rem}
mark{background:#ffe066;padding:.1em 0;border-radius:2px;box-shadow:0 0 0 2px #ffe066;scroll-margin-top:30vh}
a{color:#0b57d0}
"""


def render_source_page(doc, start: int | None, end: int | None, section: str = "") -> str:
    """A standalone page with the whole cleaned document and the span in ``<mark id="hl">``.

    ``start``/``end`` must already be clamped to the text; an empty span shows the
    document without a highlight.
    """
    text = doc.text
    if start is not None and end is not None and 0 <= start < end <= len(text):
        body = f'{esc(text[:start])}<mark id="hl">{esc(text[start:end])}</mark>{esc(text[end:])}'
        where = f'characters {start}–{end} · <a href="#hl">jump to the highlighted passage</a>'
    else:
        body = esc(text)
        where = "no passage highlighted"
    section_html = f'<p class="section">{esc(section)}</p>' if section else ""
    return f"""<!doctype html>
<html lang="{LANGS.get(getattr(doc, 'script', ''), 'zh')}">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(doc.title)}</title><style>{PAGE_STYLE}</style></head>
<body><header><h1>{esc(doc.title)}</h1>{section_html}
<p class="meta">{esc(doc.doc_id)} · {where}</p></header>
<main><div class="doc">{body}</div></main>
<script>{SCROLL_SCRIPT}</script></body></html>"""


def render_error_page(status: int, message: str) -> str:
    return (f'<!doctype html><html><head><meta charset="utf-8"><title>{status}</title>'
            f"<style>{PAGE_STYLE}</style></head><body><main><h1>{status}</h1><p>{esc(message)}</p>"
            f'<p><a href="/">back to the chat</a></p></main></body></html>')
