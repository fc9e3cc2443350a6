"""Presentation helpers for ``app.py``: pure functions that turn QA records into escaped HTML.

Kept apart from the Gradio wiring so they can be tested without a server or a model.
"""
