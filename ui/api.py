"""An OpenAI-compatible HTTP API on the app's own server, and the document library as JSON.

    GET    /v1/models
    POST   /v1/chat/completions   {"model": "policyqa", "messages": [...], "stream": true,
                                   "doc_ids": ["…"], "k": 5, "generator": "extractive"}
    GET    /api/documents
    DELETE /api/documents/{doc_id}                (admin)

The wire format follows OpenAI's closely enough that the official ``openai`` client,
LangChain's ``ChatOpenAI`` and chat front-ends work unchanged: the last user message is
the question, the turns before it are the history (follow-ups), and the assistant's
message is the answer with its ``[n]`` markers followed by a plain-text source list, so
any client shows where the answer came from. The structured citations and ``refused``
travel in an extra top-level ``policyqa`` field (in a stream, on the last chunk), which
OpenAI clients keep but do not need. ``doc_ids``, ``k`` and ``generator`` are extra request
fields; the ``openai`` client sends them with ``extra_body=``.

Errors have OpenAI's shape, ``{"error": {"message", "type", "code"}}``. Answers are written
in worker threads (never on the event loop), at most ``AppSettings.concurrency`` at once
with ``queue_size`` more waiting; a request beyond that is answered 503 "busy" at once,
with ``Retry-After``. A client that goes away mid-stream ends its answer's generator.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import aclosing, asynccontextmanager

import anyio
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.concurrency import run_in_threadpool

from qa import GENERATORS, Answer
from ui import render
from ui.access import ADMIN, READER, Access, allows, web_user

log = logging.getLogger(__name__)

MODEL = "policyqa"  # answers with the configured generator; MODEL-<generator> picks one
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
_TOKEN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]|[^\W\u3400-\u9fff\uf900-\ufaff]+|[^\w\s]")
_END = object()


class ApiError(Exception):
    """An error answered in OpenAI's shape with its HTTP status."""

    def __init__(self, status: int, message: str, kind: str = "invalid_request_error", code: str | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.kind, self.code, self.headers = status, message, kind, code, headers

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.kind, "param": None, "code": self.code}}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), self.status, headers=self.headers)


# -- request ------------------------------------------------------------------------------
class Message(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: str
    content: str | list[dict] | None = None


class ChatRequest(BaseModel):
    """What is read of a chat completion request; OpenAI's other fields are accepted and ignored."""

    model_config = ConfigDict(extra="allow")
    model: str = MODEL
    messages: list[Message]
    stream: bool = False
    stream_options: dict | None = None
    n: int = 1
    k: int | None = None
    generator: str | None = None
    doc_ids: list[str] | None = None


def message_text(message: Message) -> str:
    """A message's text; a list of content parts is joined (only text parts are understood)."""
    if message.content is None or isinstance(message.content, str):
        return message.content or ""
    texts = []
    for part in message.content:
        if part.get("type") != "text" or not isinstance(part.get("text"), str):
            raise ApiError(400, f"only text content is supported (got a {part.get('type')!r} part)",
                           code="unsupported_content")
        texts.append(part["text"])
    return "\n".join(texts)


def estimate_tokens(text: str) -> int:
    """Usage figures: one token per CJK character, word or punctuation mark (no tokenizer here)."""
    return len(_TOKEN.findall(text))


async def read_json(request: Request, limit: int) -> dict:
    """The request body as a JSON object, refused (413) past ``limit`` bytes before it is all read."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise ApiError(413, f"request too large: at most {limit} bytes (AppSettings.max_request_bytes)",
                       code="request_too_large")
    body = bytearray()
    async for part in request.stream():
        body += part
        if len(body) > limit:
            raise ApiError(413, f"request too large: at most {limit} bytes (AppSettings.max_request_bytes)",
                           code="request_too_large")
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiError(400, f"the request body is not JSON ({exc.__class__.__name__})", code="invalid_json") from None
    if not isinstance(data, dict):
        raise ApiError(400, "the request body must be a JSON object", code="invalid_json")
    return data


# -- response -----------------------------------------------------------------------------
def _citation(c, base: str) -> dict:
    start, end = render.citation_span(c)
    return {"n": c.n, "doc_id": c.hit.doc_id, "title": c.hit.title, "section": c.hit.section, "quote": c.quote,
            "start": start, "end": end, "url": base + render.source_url(c.hit.doc_id, start, end)}


def _related(hit, base: str) -> dict:
    return {"doc_id": hit.doc_id, "title": hit.title, "section": hit.section, "text": hit.text,
            "start": hit.start, "end": hit.end, "url": base + render.source_url(hit.doc_id, hit.start, hit.end)}


def policyqa_field(answer: Answer, base: str, doc_ids: list[str] | None) -> dict:
    return {"refused": answer.refused, "generator": answer.generator, "query": answer.query,
            "doc_ids": doc_ids, "citations": [_citation(c, base) for c in answer.citations],
            "related": [_related(h, base) for h in answer.related]}


def sources_text(answer: Answer, base: str) -> str:
    """The plain-text source list that follows the answer in the assistant's message."""
    def where(item: dict) -> str:
        return f"{item['title']} · {item['section']}" if item["section"] else item["title"]

    if answer.citations:
        lines = ["来源 Sources:"]
        for c in answer.citations:
            item = _citation(c, base)
            lines.append(f"[{c.n}] {where(item)}: “{c.quote}” {item['url']}")
    elif answer.related:
        lines = ["可能相关 Possibly related:"]
        lines += [f"- {where(item)} {item['url']}" for item in (_related(h, base) for h in answer.related)]
    else:
        return ""
    return "\n\n" + "\n".join(lines)


class Call:
    """One chat completion: its validated inputs and the pieces of its answer."""

    def __init__(self, req: ChatRequest, question: str, history: list[dict], generator: str | None,
                 doc_ids: list[str] | None, assistant, base: str, prompt: str):
        self.req, self.question, self.history, self.generator = req, question, history, generator
        self.doc_ids, self.assistant, self.base = doc_ids, assistant, base
        self.id = f"chatcmpl-{uuid.uuid4().hex}"
        self.created = int(time.time())
        self.prompt_tokens = estimate_tokens(prompt)

    def answer_pieces(self) -> Iterator:
        extra = {"doc_ids": self.doc_ids} if self.doc_ids else {}  # the scope, when one is asked for
        return self.assistant.stream(self.question, history=self.history, k=self.req.k, generator=self.generator,
                                     **extra)

    def usage(self, content: str) -> dict:
        completion = estimate_tokens(content)
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": completion,
                "total_tokens": self.prompt_tokens + completion}

    def chunk(self, delta: dict, finish_reason: str | None = None) -> dict:
        return {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.req.model,
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]}

    def completion(self, answer: Answer) -> dict:
        content = answer.text + sources_text(answer, self.base)
        return {"id": self.id, "object": "chat.completion", "created": self.created, "model": self.req.model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": content, "refusal": None},
                             "logprobs": None, "finish_reason": "stop"}],
                "usage": self.usage(content), "policyqa": policyqa_field(answer, self.base, self.doc_ids)}


def sse(data: dict | str) -> str:
    return f"data: {data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)}\n\n"


async def relay(pieces: Iterator) -> AsyncIterator:
    """A blocking generator's items, each produced in a worker thread; closed when the consumer stops."""
    try:
        while (piece := await run_in_threadpool(next, pieces, _END)) is not _END:
            yield piece
    finally:
        with anyio.CancelScope(shield=True):  # a client that left: end the generator (and its model work)
            await run_in_threadpool(pieces.close)


# -- admission ----------------------------------------------------------------------------
class Slots:
    """At most ``running`` answers at once and ``waiting`` more queued; the rest are turned away."""

    def __init__(self, running: int, waiting: int):
        self.running, self.capacity = max(1, running), max(1, running) + max(0, waiting)
        self.admitted = 0  # changed on the event loop only
        self._semaphore: anyio.Semaphore | None = None

    def admit(self) -> "Ticket | None":
        if self.admitted >= self.capacity:
            return None
        self.admitted += 1
        return Ticket(self)

    def semaphore(self) -> anyio.Semaphore:
        if self._semaphore is None:  # created inside the server's event loop
            self._semaphore = anyio.Semaphore(self.running)
        return self._semaphore


class Ticket:
    def __init__(self, slots: Slots):
        self.slots, self.done = slots, False

    @asynccontextmanager
    async def running(self):
        async with self.slots.semaphore():
            yield

    def release(self) -> None:
        if not self.done:
            self.done = True
            self.slots.admitted -= 1


class EventStream(StreamingResponse):
    """Server-sent events whose generator is closed, and whose ticket is given back, however it ends."""

    def __init__(self, events: AsyncIterator[str], ticket: Ticket):
        super().__init__(events, media_type="text/event-stream", headers=SSE_HEADERS)
        self.ticket = ticket

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                await self.body_iterator.aclose()
            self.ticket.release()


# -- routes -------------------------------------------------------------------------------
def reader_guard(app: FastAPI, access: Access):
    """A dependency for pages served beside the UI (the source view): whether the request may
    read them, as a browser signed in to the UI (its Gradio cookie) or with an API key."""
    def allowed(request: Request) -> bool:
        if not access.configured:
            return True
        return bool(web_user(request, app.state.gradio_app) or access.bearer_role(request.headers.get("authorization")))
    return allowed


def model_names(assistant) -> dict[str, str | None]:
    """Model ids a client can pick (a front-end's model menu picks the generator)."""
    names: dict[str, str | None] = {MODEL: None, f"{MODEL}-extractive": "extractive"}
    if assistant.llm_notice() is None:
        names[f"{MODEL}-llm"] = "llm"
    return names


def add_api(app: FastAPI, engine, settings, access: Access) -> None:
    """Mount /v1 and /api on ``app`` (before Gradio's catch-all mount at /)."""
    cfg = settings.app
    slots = Slots(cfg.concurrency, cfg.queue_size)
    started = int(time.time())
    router = APIRouter()

    def need(role: str):
        def check(request: Request) -> str:
            if not access.configured:
                return ADMIN
            header = request.headers.get("authorization")
            if not header:
                raise ApiError(401, "an API key is required: send 'Authorization: Bearer <key>'",
                               "authentication_error", "missing_api_key", {"WWW-Authenticate": "Bearer"})
            have = access.bearer_role(header)
            if have is None:
                raise ApiError(401, "the API key is not valid", "authentication_error", "invalid_api_key",
                               {"WWW-Authenticate": "Bearer"})
            if not allows(have, role):
                raise ApiError(403, f"this needs the {role} role; the key given is a {have} key",
                               "permission_error", "insufficient_role")
            return have
        return check

    def busy() -> ApiError:
        return ApiError(503, f"busy: {slots.running} answers running and {slots.capacity - slots.running} "
                             "waiting; try again shortly", "server_busy", "busy",
                        {"Retry-After": str(cfg.busy_retry_after_s)})

    def parse(data: dict, request: Request) -> Call:
        extra = data.pop("extra_body", None)  # a client that nests the extra fields literally
        if isinstance(extra, dict):
            data = {**extra, **data}
        try:
            req = ChatRequest.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "body"
            raise ApiError(400, f"{where}: {first['msg']}", code="invalid_request") from None
        assistant = engine.assistant  # one index for the whole request
        names = model_names(assistant)
        if req.model not in names:
            raise ApiError(400, f"unknown model {req.model!r}; this server has {', '.join(names)}",
                           code="model_not_found")
        if req.n != 1:
            raise ApiError(400, "n must be 1", code="invalid_n")
        max_k = settings.retrieval.max_k
        if req.k is not None and not 1 <= req.k <= max_k:
            raise ApiError(400, f"k must be between 1 and {max_k}", code="invalid_k")
        generator = req.generator or names[req.model]
        if generator is not None and generator not in GENERATORS:
            raise ApiError(400, f"generator must be one of {', '.join(GENERATORS)}", code="invalid_generator")
        users = [i for i, m in enumerate(req.messages) if m.role == "user"]
        if not users:
            raise ApiError(400, "messages hold no user message: the last user message is the question",
                           code="no_question")
        texts = [message_text(m) for m in req.messages]
        question = texts[users[-1]].strip()
        if not question:
            raise ApiError(400, "the last user message is empty", code="no_question")
        if len(question) > cfg.max_question_chars:
            raise ApiError(413, f"question too long: {len(question)} characters, at most {cfg.max_question_chars} "
                                "(AppSettings.max_question_chars)", code="question_too_long")
        history = [{"role": m.role, "content": t} for m, t in zip(req.messages[: users[-1]], texts)
                   if m.role in ("user", "assistant")]
        doc_ids = None
        if req.doc_ids:
            from retriever.library import UnknownDocument, check_known

            try:
                doc_ids = check_known(req.doc_ids, assistant.retriever.documents)
            except UnknownDocument as exc:
                raise ApiError(400, f"doc_ids: {exc}", code="unknown_document") from None
        base = str(request.base_url).rstrip("/")
        return Call(req, question, history, generator, doc_ids, assistant, base, "\n".join(texts))

    @router.get("/v1/models", dependencies=[Depends(need(READER))])
    def models() -> dict:
        return {"object": "list", "data": [{"id": name, "object": "model", "created": started, "owned_by": "policyqa"}
                                           for name in model_names(engine.assistant)]}

    @router.post("/v1/chat/completions", dependencies=[Depends(need(READER))])
    async def chat_completions(request: Request):
        call = parse(await read_json(request, cfg.max_request_bytes), request)
        ticket = slots.admit()
        if ticket is None:
            raise busy()
        if call.req.stream:
            return EventStream(events(call, ticket), ticket)
        try:
            async with ticket.running():
                answer = None
                async with aclosing(relay(call.answer_pieces())) as pieces:
                    async for piece in pieces:
                        if isinstance(piece, Answer):
                            answer = piece
                        elif await request.is_disconnected():
                            return JSONResponse({}, 499)  # nobody to answer: stop the work
            return JSONResponse(call.completion(answer))
        except Exception as exc:  # noqa: BLE001 - the trace to the log, an OpenAI-shaped 500 to the client
            log.exception("answering failed")
            raise ApiError(500, f"answering failed: {exc.__class__.__name__}", "server_error") from None
        finally:
            ticket.release()

    async def events(call: Call, ticket: Ticket) -> AsyncIterator[str]:
        include_usage = bool((call.req.stream_options or {}).get("include_usage"))
        try:
            async with ticket.running():
                yield sse(call.chunk({"role": "assistant", "content": ""}))
                answer, sent = None, []
                async with aclosing(relay(call.answer_pieces())) as pieces:
                    async for piece in pieces:
                        if isinstance(piece, Answer):
                            answer = piece
                        elif isinstance(piece, str) and piece:
                            sent.append(piece)
                            yield sse(call.chunk({"content": piece}))
                tail = sources_text(answer, call.base)
                if tail:
                    sent.append(tail)
                    yield sse(call.chunk({"content": tail}))
                final = call.chunk({}, "stop")
                final["policyqa"] = policyqa_field(answer, call.base, call.doc_ids)
                yield sse(final)
                if include_usage:
                    yield sse({**call.chunk({}), "choices": [], "usage": call.usage("".join(sent))})
        except Exception as exc:  # noqa: BLE001 - the status is sent already: the error goes in the stream
            log.exception("streaming an answer failed")
            yield sse(ApiError(500, f"answering failed: {exc.__class__.__name__}", "server_error").body())
        yield sse("[DONE]")

    @router.get("/api/documents", dependencies=[Depends(need(READER))])
    def documents(request: Request) -> dict:
        base = str(request.base_url).rstrip("/")
        return {"object": "list",
                "data": [{**d.as_dict(), "url": base + render.source_url(d.doc_id)} for d in engine.library()]}

    @router.delete("/api/documents/{doc_id:path}", dependencies=[Depends(need(ADMIN))])
    async def delete_document(doc_id: str) -> dict:
        from retriever.library import UnknownDocument

        if engine.rebuilding:
            raise ApiError(503, "the index is being updated; try again shortly", "server_busy", "index_busy",
                           {"Retry-After": str(cfg.busy_retry_after_s)})
        try:
            await run_in_threadpool(engine.remove_documents, [doc_id])
        except UnknownDocument:
            raise ApiError(404, f"no such document in the index: {doc_id}", "not_found_error",
                           "document_not_found") from None
        return {"id": doc_id, "object": "document", "deleted": True}

    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return exc.response()

    app.add_exception_handler(ApiError, api_error)
    app.include_router(router)
