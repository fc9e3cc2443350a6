"""A bound on the bytes one upload request may send, enforced before Gradio stores anything.

Gradio's upload route writes every part of a multipart request to disk (up to 1,000 files,
each up to ``max_file_size``), so without a bound on the request a single client could
fill the disk. The declared ``Content-Length`` is checked first; a chunked body is counted
as it streams and cut off at the bound (the app then sees a client that went away). Either way the client gets a 413 with a message.
"""

from __future__ import annotations

import json


class RequestBodyLimit:
    """ASGI middleware: POSTs to paths ending in one of ``suffixes`` may send ``max_bytes``."""

    def __init__(self, app, max_bytes: int, suffixes: tuple[str, ...] = ("/upload",)):
        self.app = app
        self.max_bytes = max_bytes
        self.suffixes = suffixes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST" or not scope["path"].endswith(self.suffixes):
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            return await self._refuse(send)
        seen = 0
        over = False
        replied = False

        async def counting_receive():
            nonlocal seen, over
            if over:  # stop reading: the app sees a client that went away
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    over = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message):
            # whatever the app answers to a cut-off body (an error of its own), the client
            # gets the one reason that matters
            nonlocal replied
            if not over:
                return await send(message)
            if not replied:
                replied = True
                await self._refuse(send)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not over:
                raise
            if not replied:
                await self._refuse(send)

    async def _refuse(self, send):
        body = json.dumps({"error": f"upload too large: at most {self.max_bytes} bytes per request "
                                    "(AppSettings.max_upload_bytes)"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
