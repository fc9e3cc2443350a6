"""The app's parts apart from the Gradio wiring in ``app.py``: escaped HTML (render,
library), the shared state (engine), request bounds (limits), the OpenAI-compatible API
(api) and credentials and roles (access).

Kept apart so they can be tested without a browser, and so the HTTP API and the command
line share them with the chat.
"""
