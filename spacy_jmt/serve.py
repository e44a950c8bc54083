"""`spacy-jmt serve`: a pipeline behind a JSON API and a page that shows every layer.

One process loads the pipeline once; `create_app` builds the FastAPI application:
- `GET /`: the page (spacy_jmt/static/index.html: plain HTML and a few lines of JavaScript,
  nothing fetched from elsewhere). It posts the text to `/render` and shows the figures it
  gets back.
- `POST /annotate`: `{"text": str}` or `{"texts": [str, ...]}` -> `{"docs": [...]}`, the Doc
  contract of spacy_jmt.contract (`doc_to_dict`), one per text, in order.
- `POST /render`: `{"text": str}` -> `{"doc": {...}, "sections": [...]}`: the contract and
  one HTML fragment per layer the pipeline wrote, drawn server-side with displaCy (the
  sections of spacy_jmt.render.doc_sections, which the `render` command's page shows too).
- `GET /health`, `GET /meta` (pipeline name, version, components, tasks with their kinds
  and labels, limits) and FastAPI's `/openapi.json` and `/docs`.

Bad requests get a 4xx answer with a message: 422 for a body that is not the JSON object
described (no text, not a string, unknown fields), 413 for a text over `max_chars`, more
than `max_texts` texts or a body over `max_body_bytes` (checked before it is read whole).
An empty or whitespace text gets its (empty) doc. An error inside the pipeline gets a 500
with its message; the server goes on.

Concurrency. The event loop never runs the pipeline: each request's work runs on a pool of
`workers` threads that share the one loaded pipeline, without a lock. A lock, or a queue
that batches requests for one inference thread, would make every request wait for the
slowest one ahead of it (a 100,000-character text takes seconds), and a batch is as slow as
its longest doc; here a short text is answered while a long one is still being parsed. It
is safe because inference changes no shared state but the vocab: the weights are only
read, torch's grad mode is per thread, every request has its own Docs, and the strings and
lexemes that new words add to the vocab are written by spaCy's Cython tokenizer and
StringStore, which hold the GIL while they do. It is fast because torch releases the GIL
in its kernels, so requests overlap on several cores; with one torch thread per request
(`serve(threads=1)`, the default) they do not fight over cores as torch's own intra-op
threads would. A request of several texts runs them through `nlp.pipe` in batches. The
cost of sharing: spaCy's `memory_zone` cannot be used (it frees the vocab's new strings
under the feet of other requests), so the vocab grows with each word it has not seen, as
in any long-running spaCy process.
"""

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, TypeVar, Union

import spacy
from fastapi import FastAPI, HTTPException
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, StrictStr, model_validator
from spacy.language import Language

from .contract import doc_to_dict
from .figures import communicates, jmt_components
from .render import FIGURES_CSS, doc_sections

PAGE = Path(__file__).parent / "static" / "index.html"
T = TypeVar("T")


@dataclass
class ServeSettings:
    """The limits and the thread pool of a server.

    max_chars (int): The longest text, in characters.
    max_texts (int): The most texts in one request.
    workers (int): Threads that run the pipeline (requests answered at the same time).
    batch_size (int): Texts per `nlp.pipe` batch within a request.
    max_body_bytes (int): The largest request body; 0: enough for `max_texts` texts of
        `max_chars` characters, each JSON-escaped (up to 12 bytes a character).
    """

    max_chars: int = 100_000
    max_texts: int = 64
    workers: int = 4
    batch_size: int = 32
    max_body_bytes: int = 0

    def __post_init__(self) -> None:
        for name in ("max_chars", "max_texts", "workers", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.max_body_bytes <= 0:
            self.max_body_bytes = self.max_texts * (12 * self.max_chars + 64) + 1024


# -- the API's models --------------------------------------------------------------------------


class AnnotateRequest(BaseModel):
    """One text or a list of texts to annotate."""

    model_config = ConfigDict(extra="forbid")
    text: Optional[StrictStr] = Field(None, description="One text.")
    texts: Optional[List[StrictStr]] = Field(None, description="Several texts, annotated in order.")

    @model_validator(mode="after")
    def _one_of(self) -> "AnnotateRequest":
        if (self.text is None) == (self.texts is None):
            raise ValueError("give either 'text' (a string) or 'texts' (a list of strings)")
        return self

    def all_texts(self) -> List[str]:
        """RETURNS (List[str]): The texts, one or several."""
        return [self.text] if self.text is not None else list(self.texts or [])


class RenderRequest(BaseModel):
    """A text to annotate and draw."""

    model_config = ConfigDict(extra="forbid")
    text: StrictStr = Field(..., description="The text.")


class CharSpan(BaseModel):
    """A span as character offsets into the text (`Doc.to_json`)."""

    model_config = ConfigDict(extra="allow")
    start: int
    end: int
    label: Optional[str] = None
    kb_id: Optional[str] = None


class TokenOut(BaseModel):
    """A token of `Doc.to_json`: only the attributes the doc has annotated are there."""

    model_config = ConfigDict(extra="allow")
    id: int
    start: int
    end: int
    tag: Optional[str] = None
    pos: Optional[str] = None
    morph: Optional[str] = None
    lemma: Optional[str] = None
    dep: Optional[str] = None
    head: Optional[int] = None


class RelationOut(BaseModel):
    """A relation of `doc._.relations`: head and tail spans, label, score."""

    model_config = ConfigDict(extra="allow")
    head: CharSpan
    tail: CharSpan
    label: str
    score: float


class DocUnderscore(BaseModel):
    """What `Doc.to_json` drops: relations (None: not annotated) and pair relatedness."""

    model_config = ConfigDict(extra="allow")
    relations_json: Optional[List[RelationOut]] = None
    relatedness: Optional[float] = None


class DocContract(BaseModel):
    """The Doc contract of spacy_jmt.contract.doc_to_dict (spaCy's `Doc.to_json` plus
    relations, relatedness and span group attrs); keys the doc has not annotated are absent."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)
    text: str
    tokens: List[TokenOut] = []
    sents: List[CharSpan] = []
    ents: List[CharSpan] = []
    spans: Dict[str, List[CharSpan]] = {}
    cats: Dict[str, float] = {}
    underscore: DocUnderscore = Field(DocUnderscore(), alias="_")
    span_attrs: Dict[str, Dict[str, Any]] = Field(
        {}, description="Per span group: 'scores' (one per span), 'score' (a cluster's), ..."
    )


class AnnotateResponse(BaseModel):
    """The docs, one per text, in order."""

    docs: List[DocContract]


class Section(BaseModel):
    """One layer of the page: an HTML fragment."""

    key: str = Field(..., description="parse, ents, spans:<key>, relations, coref, pair, ...")
    title: str
    html: str


class RenderResponse(BaseModel):
    """The doc and its figures."""

    doc: DocContract
    sections: List[Section]


class TaskInfo(BaseModel):
    """A task of a jmt component."""

    component: str
    name: str
    kind: str
    level: int
    labels: List[str]
    pair: bool = Field(..., description="Runs on texts of exactly two sentences.")


class ComponentInfo(BaseModel):
    """A component of the pipeline."""

    name: str
    factory: str
    labels: Optional[List[str]] = Field(None, description="Its labels (jmt: see the tasks).")


class Limits(BaseModel):
    """The server's request limits."""

    max_chars: int
    max_texts: int
    max_body_bytes: int
    workers: int


class MetaResponse(BaseModel):
    """The pipeline the server runs."""

    name: str
    version: str
    lang: str
    spacy_version: str
    components: List[ComponentInfo]
    tasks: List[TaskInfo]
    communication: List[str] = Field(..., description="Components whose tasks talk (heatmap).")
    limits: Limits


class HealthResponse(BaseModel):
    """The server is up."""

    status: str
    pipeline: str
    in_flight: int = Field(..., description="Requests being annotated now.")


class ErrorResponse(BaseModel):
    """What was wrong with the request."""

    detail: str


# -- the pipeline --------------------------------------------------------------------------


def pipeline_meta(nlp: Language, settings: ServeSettings) -> MetaResponse:
    """RETURNS (MetaResponse): The pipeline's name, version, components and tasks."""
    jmts = jmt_components(nlp)
    components = []
    for name, pipe in nlp.pipeline:
        labels = getattr(pipe, "labels", None)
        plain = isinstance(labels, (list, tuple)) and pipe not in jmts
        components.append(
            ComponentInfo(
                name=name,
                factory=nlp.get_pipe_meta(name).factory,
                labels=[str(label) for label in labels or ()] if plain else None,
            )
        )
    tasks = [
        TaskInfo(component=pipe.name, name=task.name, kind=task.kind, level=task.level,
                 labels=list(task.labels), pair=bool(task.pair_level))
        for pipe in jmts
        for task in pipe.tasks
    ]  # fmt: skip
    return MetaResponse(
        name=str(nlp.meta.get("name", "")),
        version=str(nlp.meta.get("version", "")),
        lang=str(nlp.lang),
        spacy_version=spacy.__version__,
        components=components,
        tasks=tasks,
        communication=[pipe.name for pipe in jmts if communicates(pipe)],
        limits=Limits(max_chars=settings.max_chars, max_texts=settings.max_texts,
                      max_body_bytes=settings.max_body_bytes, workers=settings.workers),
    )  # fmt: skip


# -- the application ---------------------------------------------------------------------------


class Annotator:
    """Runs the pipeline on a pool of threads that share it (see the module docstring).

    nlp (Language): The pipeline.
    settings (ServeSettings): The limits and the number of threads.
    """

    def __init__(self, nlp: Language, settings: ServeSettings) -> None:
        self.nlp = nlp
        self.settings = settings
        self.in_flight = 0  # changed on the event loop only
        self._pool = ThreadPoolExecutor(settings.workers, thread_name_prefix="spacy-jmt-serve")
        if nlp.max_length < settings.max_chars:
            nlp.max_length = settings.max_chars

    def check(self, texts: List[str]) -> None:
        """Refuse too many texts or a text that is too long (HTTP 413)."""
        if len(texts) > self.settings.max_texts:
            raise HTTPException(
                413, f"{len(texts)} texts in one request; the server takes at most "
                f"{self.settings.max_texts} (--max-texts)",
            )  # fmt: skip
        for i, text in enumerate(texts):
            if len(text) > self.settings.max_chars:
                where = "the text" if len(texts) == 1 else f"text {i}"
                raise HTTPException(
                    413, f"{where} has {len(text):,} characters; the server takes at most "
                    f"{self.settings.max_chars:,} (--max-chars)",
                )  # fmt: skip

    async def run(self, func: Callable[..., T], *args: Any) -> T:
        """Run `func(*args)` on the pool; an exception becomes an HTTP 500 with its message.

        RETURNS (T): What `func` returned.
        """
        self.in_flight += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, func, *args)
        except HTTPException:
            raise
        except Exception as err:  # the pipeline failed on this input: say so, go on serving
            raise HTTPException(500, f"the pipeline failed: {type(err).__name__}: {err}") from err
        finally:
            self.in_flight -= 1

    def annotate(self, texts: List[str]) -> bytes:
        """RETURNS (bytes): The AnnotateResponse, JSON: the Doc contract of each text. (Run
        in a worker, as `render`: the JSON of a long doc takes a while to write, and the
        event loop must stay free.)"""
        docs = self.nlp.pipe(texts, batch_size=self.settings.batch_size)
        return _to_json(AnnotateResponse, {"docs": [doc_to_dict(doc) for doc in docs]})

    def render(self, text: str) -> bytes:
        """RETURNS (bytes): The RenderResponse, JSON: the contract and the sections."""
        doc = self.nlp(text)
        sections = [section._asdict() for section in doc_sections(doc, self.nlp)]
        return _to_json(RenderResponse, {"doc": doc_to_dict(doc), "sections": sections})

    def close(self) -> None:
        """Stop the threads once the requests they run are done."""
        self._pool.shutdown(wait=True)


def _to_json(model: Any, data: Dict[str, Any]) -> bytes:
    """RETURNS (bytes): `data` checked against the response model and written as JSON, with
    only the keys it has (the contract leaves out what a doc has not annotated)."""
    return model.model_validate(data).model_dump_json(by_alias=True, exclude_unset=True).encode()


class BodyLimit:
    """ASGI middleware: a request body over `max_bytes` gets a 413 before it is read whole
    (by its Content-Length, or by counting a chunked body as it arrives).

    app (Callable): The ASGI application.
    max_bytes (int): The largest body.
    """

    def __init__(self, app: Callable, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Dict[str, Any], receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None:
            if not length.isdigit() or int(length) > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            body += message.get("body", b"")
            if len(body) > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            more = message.get("more_body", False)
        replayed = False

        async def replay() -> Dict[str, Any]:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Dict[str, Any], receive: Callable, send: Callable) -> None:
        message = f"the request body is over {self.max_bytes:,} bytes"
        await JSONResponse({"detail": message}, status_code=413)(scope, receive, send)


ERRORS: Dict[Union[int, str], Dict[str, Any]] = {
    413: {"model": ErrorResponse, "description": "Too many texts, or a text or body too long."},
    500: {"model": ErrorResponse, "description": "The pipeline failed on this input."},
}


def create_app(nlp: Language, settings: Optional[ServeSettings] = None) -> FastAPI:
    """Build the application for a loaded pipeline.

    nlp (Language): The pipeline, loaded once.
    settings (Optional[ServeSettings]): Limits and threads; None: the defaults.
    RETURNS (FastAPI): The ASGI application (its `state.annotator` runs the pipeline).
    """
    settings = settings or ServeSettings()
    annotator = Annotator(nlp, settings)
    meta = pipeline_meta(nlp, settings)
    page = PAGE.read_text(encoding="utf8").replace(
        "/* FIGURES_CSS */", FIGURES_CSS.read_text("utf8")
    )
    app = FastAPI(
        title=f"spacy-jmt: {meta.name or 'pipeline'}",
        version=meta.version or "0",
        description="Annotate texts with a spacy-jmt pipeline: the Doc contract as JSON, "
        "and a page that draws every layer.",
    )
    app.state.annotator = annotator
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.router.add_event_handler("shutdown", annotator.close)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index() -> str:
        return page

    @app.get("/health", response_model=HealthResponse)
    async def health() -> HealthResponse:
        """The server is up and how busy it is."""
        return HealthResponse(status="ok", pipeline=meta.name, in_flight=annotator.in_flight)

    @app.get("/meta", response_model=MetaResponse)
    async def get_meta() -> MetaResponse:
        """The pipeline: name, version, components, tasks with their kinds and labels."""
        return meta

    @app.post("/annotate", response_model=AnnotateResponse, responses=ERRORS)
    async def annotate(request: AnnotateRequest) -> Response:
        """Annotate one text or several: the Doc contract of each, in order."""
        texts = request.all_texts()
        annotator.check(texts)
        content = await annotator.run(annotator.annotate, texts)
        return Response(content, media_type="application/json")

    @app.post("/render", response_model=RenderResponse, responses=ERRORS)
    async def render(request: RenderRequest) -> Response:
        """Annotate one text and draw each layer as an HTML fragment (displaCy)."""
        annotator.check([request.text])
        content = await annotator.run(annotator.render, request.text)
        return Response(content, media_type="application/json")

    return app


def serve(
    pipeline: str,
    host: str = "127.0.0.1",
    port: int = 8080,
    settings: Optional[ServeSettings] = None,
    threads: int = 1,
    log_level: str = "info",
) -> None:
    """Load a pipeline once and serve it until interrupted.

    pipeline (str): A pipeline directory or installed package.
    host (str): The address to listen on.
    port (int): The port.
    settings (Optional[ServeSettings]): Limits and worker threads.
    threads (int): torch intra-op threads per request (0: torch's default).
    log_level (str): uvicorn's log level.
    """
    import uvicorn

    if threads > 0:
        import torch

        torch.set_num_threads(threads)
    settings = settings or ServeSettings()
    nlp = spacy.load(pipeline)
    app = create_app(nlp, settings)
    print(
        f"Serving {nlp.meta.get('name', pipeline)} ({pipeline}) at http://{host}:{port} "
        f"with {settings.workers} worker threads; settings: {asdict(settings)}",
        flush=True,
    )
    uvicorn.run(app, host=host, port=port, log_level=log_level)
