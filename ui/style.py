"""CSS and theme for the chat page.

Fonts are named, never fetched: the default Gradio theme pulls a web font from the
internet, which an offline machine cannot reach, and the CJK fonts installed on the
machine (Noto Sans CJK) render Chinese without boxes.
"""

from __future__ import annotations

FONTS = ["Noto Sans CJK SC", "Noto Sans SC", "PingFang SC", "Microsoft YaHei", "system-ui", "sans-serif"]
MONO = ["Noto Sans Mono CJK SC", "ui-monospace", "monospace"]


def theme():
    import gradio as gr

    return gr.themes.Soft(primary_hue="blue", font=FONTS, font_mono=MONO)


CSS = """
.pq-answer { line-height: 1.7; overflow-wrap: anywhere; }
.pq-streaming { opacity: .85; }
a.pq-cite { text-decoration: none; font-size: .8em; vertical-align: super; padding: 0 1px; font-weight: 600; }
.pq-sources, .pq-related, .pq-reading { margin-top: .6em; padding-top: .4em; border-top: 1px solid var(--border-color-primary); font-size: .92em; }
.pq-label { font-weight: 600; color: var(--body-text-color-subdued); margin-bottom: .2em; }
.pq-sources ol, .pq-related ul, .pq-reading ul { margin: 0; padding-left: 1.4em; }
.pq-sources li, .pq-related li, .pq-reading li { margin: .35em 0; overflow-wrap: anywhere; }
a.pq-src { font-weight: 600; }
.pq-section { color: var(--body-text-color-subdued); font-size: .9em; }
blockquote.pq-quote { margin: .2em 0 .1em 0; padding: .1em .6em; border-left: 3px solid #f0c000;
  background: var(--background-fill-secondary); }
.pq-scores { display: inline-block; font-size: .82em; color: var(--body-text-color-subdued); font-family: var(--font-mono); }
.pq-refusal { border-left: 4px solid #d97706; padding: .2em .6em; background: rgba(217,119,6,.08); }
.pq-refusal-tag { display: block; font-weight: 600; color: #b45309; }
.pq-error { color: #b91c1c; }
#pq-upload-log { font-size: .9em; overflow-wrap: anywhere; }
#pq-library { overflow-x: auto; }
table.pq-library { width: 100%; border-collapse: collapse; font-size: .9em; }
table.pq-library th, table.pq-library td { text-align: left; padding: .3em .5em; vertical-align: top;
  border-bottom: 1px solid var(--border-color-primary); overflow-wrap: anywhere; }
table.pq-library td.pq-num { text-align: right; }
table.pq-library code { font-size: .85em; color: var(--body-text-color-subdued); }
.pq-scope { padding: .3em .6em; border-left: 4px solid #2563eb; background: rgba(37,99,235,.08); }
.pq-scope-chip { display: inline-block; font-size: .82em; padding: 0 .5em; margin-bottom: .3em; border-radius: 1em;
  background: rgba(37,99,235,.12); color: var(--body-text-color); }
.pq-conflict { color: #b45309; font-weight: 600; }
@media (max-width: 600px) { #pq-title h2 { font-size: 1.25rem; } }
#pq-upload-log ul { padding-left: 1.2em; margin: .2em 0; }
"""
