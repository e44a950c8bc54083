"""`spacy-jmt serve`: each endpoint and each bad request of the JSON API, the sections of the
page, requests that do not wait for each other on a live server, the page in a real browser
(Chromium through playwright) and displaCy figures whose first word is not clipped."""

import os
import re
import socket
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any, Dict, Iterator, List

import httpx
import pytest
import spacy
from pipelines import COREF_CLUSTERS, COREF_WORDS, TEXTS, train_showcase
from spacy.tokens import Doc, DocBin, Span
from test_pair_tasks import TASKS as PAIR_TASKS
from test_pair_tasks import examples_of as pair_examples
from tiny_data import TINY_MODEL
from typer.testing import CliRunner

from spacy_jmt.cli import app as cli_app
from spacy_jmt.contract import doc_to_dict
from spacy_jmt.converters.coref import set_clusters
from spacy_jmt.figures import CLUSTER_COLOURS, fit_words, text_width
from spacy_jmt.pairs import make_pair_doc
from spacy_jmt.relations import Relation
from spacy_jmt.render import doc_sections, render_relations
from spacy_jmt.serve import (
    AnnotateResponse,
    MetaResponse,
    RenderResponse,
    ServeSettings,
    create_app,
)

with warnings.catch_warnings():  # starlette warns on import that it would rather have httpx2
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]  # fmt: skip
METRICS = Path(__file__).resolve().parents[1] / "metrics"
LIMITS = ServeSettings(max_chars=2000, max_texts=4, workers=2)
LIVE_MAX_CHARS = 60_000
# Parse, entities, relations and two coreference clusters in the showcase pipeline.
RICH = TEXTS[0]


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    return train_showcase(tmp_path_factory.mktemp("serve") / "showcase")


@pytest.fixture(scope="module")
def nlp(model_path):
    return spacy.load(model_path)


@pytest.fixture(scope="module")
def client(nlp) -> Iterator[TestClient]:
    with TestClient(create_app(nlp, LIMITS)) as test_client:
        yield test_client


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(model_path) -> Iterator[str]:
    """The real command, `python -m spacy_jmt serve`, on a free loopback port."""
    port = _free_port()
    options = ["--port", str(port), "--max-chars", str(LIVE_MAX_CHARS), "--workers", "4",
               "--log-level", "warning"]  # fmt: skip
    command = [sys.executable, "-m", "spacy_jmt", "serve", str(model_path), *options]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the server did not come up: {proc.communicate()[0]}")
        time.sleep(0.2)
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    assert proc.returncode in (0, -15), proc.stdout.read() if proc.stdout else ""


def _rounded(data: Any, digits: int = 5) -> Any:
    """`data` with its floats rounded: the span scores of a doc differ in the 7th digit
    with the batch it ran in (float32 sums in another order)."""
    if isinstance(data, float):
        return round(data, digits)
    if isinstance(data, dict):
        return {key: _rounded(value, digits) for key, value in data.items()}
    if isinstance(data, list):
        return [_rounded(value, digits) for value in data]
    return data


def _non_root_tokens(contract: Dict[str, Any]) -> int:
    return sum(token["head"] != token["id"] for token in contract["tokens"])


# -- the API ------------------------------------------------------------------------------------


def test_health_and_meta(client, nlp):
    assert client.get("/health").json() == {"status": "ok", "pipeline": "showcase", "in_flight": 0}
    meta = MetaResponse.model_validate(client.get("/meta").json())
    jmt = nlp.get_pipe("jmt")
    assert (meta.name, meta.version, meta.lang) == ("showcase", nlp.meta["version"], "en")
    assert [(c.name, c.factory) for c in meta.components] == [("jmt", "jmt")]
    assert {t.name: (t.kind, t.labels) for t in meta.tasks} == {
        t.name: (t.kind, list(t.labels)) for t in jmt.tasks
    }
    assert {t.kind for t in meta.tasks} >= {"tagging", "spans", "parsing", "relation"}
    assert not any(t.pair for t in meta.tasks) and meta.communication == []
    assert (meta.limits.max_chars, meta.limits.max_texts) == (2000, 4)


def test_annotate_answers_the_doc_contract(client, nlp):
    for text in TEXTS:
        response = client.post("/annotate", json={"text": text})
        assert response.status_code == 200
        assert response.json() == {"docs": [doc_to_dict(nlp(text))]}
    rich = client.post("/annotate", json={"text": RICH}).json()["docs"][0]
    assert rich["ents"] and rich["_"]["relations_json"] and "coref_clusters_1" in rich["spans"]
    assert rich["span_attrs"]["ents"]["scores"]
    AnnotateResponse.model_validate(client.post("/annotate", json={"text": RICH}).json())


def test_annotate_a_batch_in_order(client, nlp):
    texts = TEXTS[:4]
    response = client.post("/annotate", json={"texts": texts})
    assert response.status_code == 200
    docs = response.json()["docs"]
    assert [d["text"] for d in docs] == texts
    assert docs == [doc_to_dict(doc) for doc in nlp.pipe(texts)]
    assert _rounded(docs) == _rounded([doc_to_dict(nlp(text)) for text in texts])
    assert client.post("/annotate", json={"texts": []}).json() == {"docs": []}


@pytest.mark.parametrize("text", ["", " ", "\n\t  \n"])
def test_empty_and_whitespace_texts_get_a_doc(client, text):
    response = client.post("/annotate", json={"text": text})
    assert response.status_code == 200
    (doc,) = response.json()["docs"]
    assert doc["text"] == text
    assert all(not text[t["start"] : t["end"]].strip() for t in doc["tokens"])
    assert not doc["ents"] and not doc["_"]["relations_json"]
    rendered = client.post("/render", json={"text": text})
    assert rendered.status_code == 200 and rendered.json()["doc"]["text"] == text


@pytest.mark.parametrize(
    "body,status,message",
    [
        ({}, 422, "either 'text'"),
        ({"text": None}, 422, "either 'text'"),
        ({"text": 5}, 422, "valid string"),
        ({"texts": "one text"}, 422, "valid list"),
        ({"texts": ["fine", 3]}, 422, "valid string"),
        ({"text": "a", "texts": ["b"]}, 422, "either 'text'"),
        ({"txt": "a"}, 422, "Extra inputs"),
        ([RICH], 422, "valid dictionary"),
        ({"text": "x" * 2001}, 413, "2,001 characters; the server takes at most 2,000"),
        ({"texts": ["ok", "x" * 2001]}, 413, "text 1 has 2,001 characters"),
        ({"texts": ["a"] * 5}, 413, "5 texts in one request; the server takes at most 4"),
    ],
)  # fmt: skip
def test_bad_requests_get_a_4xx_with_a_message(client, body, status, message):
    response = client.post("/annotate", json=body)
    assert response.status_code == status and message in response.text, response.text
    assert client.get("/health").json()["status"] == "ok"


@pytest.mark.parametrize(
    "body,status,message",
    [
        ({}, 422, "Field required"),
        ({"text": ["a list"]}, 422, "valid string"),
        ({"texts": ["a"]}, 422, "Extra inputs"),
        ({"text": "x" * 2001}, 413, "2,001 characters"),
    ],
)  # fmt: skip
def test_bad_render_requests_get_a_4xx_with_a_message(client, body, status, message):
    response = client.post("/render", json=body)
    assert response.status_code == status and message in response.text, response.text


def test_bodies_that_are_not_json_or_too_large(client):
    headers = {"content-type": "application/json"}
    response = client.post("/annotate", content=b'{"text": "unfinished', headers=headers)
    assert response.status_code == 422 and "JSON decode error" in response.text
    limit = LIMITS.max_body_bytes
    response = client.post("/annotate", content=b" " * (limit + 1), headers=headers)
    assert response.status_code == 413 and "request body is over" in response.text

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        for _ in range(limit // 10_000 + 2):
            yield b" " * 10_000

    response = client.post("/annotate", content=chunks(), headers=headers)
    assert response.status_code == 413
    pieces = iter([b'{"text": ', b'"Bob lives in Rome."}'])  # a chunked body within the limit
    chunked = client.post("/annotate", content=pieces, headers=headers)
    assert chunked.status_code == 200 and chunked.json()["docs"][0]["text"] == "Bob lives in Rome."


def test_a_failing_pipeline_gets_a_500_and_the_server_goes_on(client, monkeypatch):
    def broken(texts: List[str]) -> bytes:
        raise RuntimeError(f"cannot annotate {len(texts)} text(s)")

    monkeypatch.setattr(client.app.state.annotator, "annotate", broken)
    response = client.post("/annotate", json={"text": RICH})
    assert response.status_code == 500
    assert response.json() == {
        "detail": "the pipeline failed: RuntimeError: cannot annotate 1 text(s)"
    }
    monkeypatch.undo()
    assert client.post("/annotate", json={"text": RICH}).status_code == 200
    assert client.get("/health").json()["in_flight"] == 0


def test_openapi_describes_the_api(client):
    schema = client.get("/openapi.json").json()
    assert {"/annotate", "/render", "/health", "/meta"} <= set(schema["paths"])
    annotate = schema["paths"]["/annotate"]["post"]
    assert annotate["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/AnnotateRequest"
    )
    assert {"200", "413", "422"} <= set(annotate["responses"])
    models = schema["components"]["schemas"]
    assert {"AnnotateRequest", "AnnotateResponse", "DocContract", "TokenOut", "RenderResponse",
            "MetaResponse", "ErrorResponse"} <= set(models)  # fmt: skip
    assert set(models["AnnotateRequest"]["properties"]) == {"text", "texts"}
    assert "_" in models["DocContract"]["properties"]
    assert client.get("/").text.startswith("<!DOCTYPE html>")


# -- the page's sections ----------------------------------------------------------------------


def test_render_draws_each_layer_the_pipeline_wrote(client, nlp):
    response = client.post("/render", json={"text": RICH})
    assert response.status_code == 200
    result = RenderResponse.model_validate(response.json())
    contract = doc_to_dict(nlp(RICH))
    assert response.json()["doc"] == contract
    sections = {s.key: s.html for s in result.sections}
    assert list(sections) == ["parse", "ents", "spans:ents", "relations", "coref", "tokens"]
    assert sections["parse"].count('class="displacy-arc"') == _non_root_tokens(contract)
    assert sections["parse"].count("<svg") == len(contract["sents"])
    for ent in contract["ents"]:
        assert f"{RICH[ent['start'] : ent['end']]}\n" in sections["ents"]
    for relation in contract["_"]["relations_json"]:
        assert relation["label"] in sections["relations"]
    clusters = [k for k in contract["spans"] if k.startswith("coref_clusters_")]
    colours = re.findall(r'class="swatch" style="background: (#[0-9a-f]{6})"', sections["coref"])
    assert len(clusters) >= 2 and len(set(colours)) == len(clusters)
    assert sections["tokens"].count("<tr>") == len(contract["tokens"]) + 1
    assert all(f"<th>{name}</th>" in sections["tokens"] for name in ("tag", "pos", "head", "dep"))


def test_render_escapes_the_text(client):
    text = "<script>alert(1)</script> & <b>Bob</b>"
    result = client.post("/render", json={"text": text}).json()
    for section in result["sections"]:
        assert "<script>" not in section["html"] and "<b>Bob" not in section["html"]
    tokens = next(s["html"] for s in result["sections"] if s["key"] == "tokens")
    assert "&lt;" in tokens and "&amp;" in tokens


def test_pair_scores_and_weights_heatmap_where_the_pipeline_has_them():
    nlp = spacy.blank("en")
    model = {**TINY_MODEL, "hidden_width": 48, "communication": "complete"}
    nlp.add_pipe("jmt", config={"model": model, "tasks": PAIR_TASKS})
    nlp.initialize(lambda: pair_examples(nlp))
    doc = nlp(make_pair_doc(nlp, "A man is playing a guitar", "A man is playing an instrument"))
    sections = {s.key: s.html for s in doc_sections(doc, nlp)}
    assert f"{doc._.relatedness:.3f}" in sections["pair"]
    assert all(label in sections["pair"] for label in doc.cats)
    weights = sections["weights:jmt"]
    assert weights.startswith("<svg") and all(f">{t}<" in weights for t in ("tag", "dep"))
    words = ["A", "cat", "sleeps"]
    one = nlp(Doc(nlp.vocab, words=words, sent_starts=[True, False, False]))
    note = {s.key: s.html for s in doc_sections(one, nlp)}["pair"]
    assert "exactly two sentences; this one has 1" in note
    assert "pair" not in {s.key for s in doc_sections(one)}  # no pipeline (a DocBin): no note
    with TestClient(create_app(nlp, LIMITS)) as local:
        meta = local.get("/meta").json()
    assert meta["communication"] == ["jmt"]
    assert {t["name"] for t in meta["tasks"] if t["pair"]} == {"relatedness", "entailment"}


# -- the command --------------------------------------------------------------------------------


def test_cli_imports_no_web_framework():
    code = "import sys, spacy_jmt.cli; print(sorted({'fastapi', 'uvicorn'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == "[]", result.stderr
    help_text = CliRunner().invoke(cli_app, ["serve", "--help"]).output
    assert all(option in help_text for option in ("--port", "--max-chars", "--workers"))


SWATCH = r'class="swatch" style="background: (#[0-9a-f]{6})"'


def _no_ids(markup: str) -> str:
    """RETURNS (str): displaCy's markup without the random ids of its SVGs' arcs."""
    return re.sub(r"\b[0-9a-f]{32}-\d+", "ID", markup)


def _page_keys(page: str) -> List[str]:
    return re.findall(r'<section data-key="([^"]+)">', page)


def test_render_page_shows_mentions_and_each_cluster_in_its_colour(tmp_path):
    doc = Doc(spacy.blank("en").vocab, words=COREF_WORDS)
    mentions = [(0, 1, "PER"), (2, 3, "PER"), (4, 5, "PRON"), (7, 8, "PRON")]
    doc.spans["mentions"] = [Span(doc, s, e, label=label) for s, e, label in mentions]
    doc.spans["mentions"].attrs["scores"] = [0.91, 0.82, 0.73, 0.64]
    set_clusters(doc, COREF_CLUSTERS)  # gold: Anne ... She, Walter ... him
    doc.spans["coref_clusters_2"].attrs["score"] = 0.5
    DocBin(docs=[doc, Doc(doc.vocab, words=["Hi"])]).to_disk(tmp_path / "gold.spacy")
    out = tmp_path / "gold.html"
    result = CliRunner().invoke(cli_app, ["render", str(tmp_path / "gold.spacy"), str(out)])
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf8")
    assert page.count('<article class="spacy-jmt-doc">') == 2
    assert _page_keys(page) == ["spans:mentions", "coref", "tokens", "tokens"]
    assert all(label in page for label in ("PER 0.91", "PER 0.82", "PRON 0.73", "PRON 0.64"))
    assert re.findall(SWATCH, page) == CLUSTER_COLOURS[:2]
    for colour in CLUSTER_COLOURS[:2]:  # the swatch and the two mentions of the cluster
        assert page.count(f"background: {colour}") >= 3
    assert "Anne → She</li>" in page and "(0.50): Walter → him</li>" in page


def test_render_page_shows_what_the_serve_page_shows(client, model_path, tmp_path):
    out = tmp_path / "showcase.html"
    result = CliRunner().invoke(cli_app, ["render", str(model_path), str(out), "-t", RICH])
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf8")
    sections = client.post("/render", json={"text": RICH}).json()["sections"]
    assert _page_keys(page) == [s["key"] for s in sections]
    assert {"parse", "ents", "relations", "coref"} <= set(_page_keys(page))
    for section in sections:  # the same figures, drawn by the same functions
        assert _no_ids(section["html"]) in _no_ids(page), section["key"]
    assert len(set(re.findall(SWATCH, page))) >= 2


def test_live_server_answers_short_texts_while_a_long_one_runs(server):
    long_text = " ".join(TEXTS) * (LIVE_MAX_CHARS // (len(" ".join(TEXTS)) + 1))
    assert len(long_text) <= LIVE_MAX_CHARS
    finished: Dict[str, float] = {}
    answers: Dict[str, Any] = {}

    def post_long() -> None:
        response = httpx.post(f"{server}/annotate", json={"texts": [long_text] * 2}, timeout=300)
        answers["long"] = response
        finished["long"] = time.monotonic()

    thread = threading.Thread(target=post_long)
    thread.start()
    while httpx.get(f"{server}/health").json()["in_flight"] < 1:
        assert thread.is_alive(), "the long request ended before it was seen running"
        time.sleep(0.01)
    for i, text in enumerate(TEXTS[:3]):
        response = httpx.post(f"{server}/annotate", json={"text": text}, timeout=60)
        assert response.status_code == 200
        finished[f"short {i}"] = time.monotonic()
    thread.join()
    assert answers["long"].status_code == 200 and len(answers["long"].json()["docs"]) == 2
    assert all(finished[f"short {i}"] < finished["long"] for i in range(3)), finished


def test_live_concurrent_answers_equal_one_at_a_time(server):
    texts = TEXTS * 4
    with httpx.Client(base_url=server, timeout=60) as http:
        expected = [http.post("/annotate", json={"text": t}).json() for t in TEXTS]
    results: List[Any] = [None] * len(texts)

    def worker(k: int) -> None:
        with httpx.Client(base_url=server, timeout=60) as http:
            for i in range(k, len(texts), 8):
                results[i] = http.post("/annotate", json={"text": texts[i]}).json()

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [expected[i % len(TEXTS)] for i in range(len(texts))]
    bad = httpx.post(f"{server}/annotate", json={"text": "x" * (LIVE_MAX_CHARS + 1)})
    assert bad.status_code == 413 and httpx.get(f"{server}/health").status_code == 200


# -- displaCy figures that fit, and the page in a browser --------------------------------------


def _oswald_doc() -> Doc:
    doc = spacy.blank("en")("Lee Harvey Oswald shot John Fitzgerald Kennedy in Dallas .")
    killer, victim, city = Span(doc, 0, 3, "PER"), Span(doc, 4, 7, "PER"), Span(doc, 8, 9, "LOC")
    doc.ents = [killer, victim, city]
    doc._.relations = [Relation(killer, victim, "Kill"), Relation(victim, city, "Live_In")]
    return doc


def test_fit_words_leaves_room_for_the_first_and_widest_words():
    words = [{"text": "Lee Harvey Oswald", "tag": "PER"}, {"text": "shot", "tag": ""}]
    options = fit_words(words)
    assert options["offset_x"] >= text_width("Lee Harvey Oswald") / 2 > 50  # displaCy's 50
    assert options["distance"] == 175  # displaCy's default is wide enough here
    wide = fit_words([{"text": "a", "tag": ""}, {"text": "x" * 40, "tag": ""}] * 2)
    assert wide["distance"] >= (text_width("a") + text_width("x" * 40)) / 2 > 175
    assert fit_words(words, {"offset_x": 7, "compact": True}) == {
        "offset_x": 7, "compact": True, "distance": 150
    }  # fmt: skip
    last = fit_words(words[::-1])  # a long last word: room on the far side, `distance`
    assert last["offset_x"] == 50 and last["distance"] >= text_width("Lee Harvey Oswald") / 2
    svg = render_relations(_oswald_doc(), page=False)
    x = re.search(r'class="displacy-word" fill="currentColor" x="(\d+)">Lee Harvey Oswald', svg)
    assert x is not None and int(x.group(1)) >= text_width("Lee Harvey Oswald") / 2


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


# For each displaCy SVG: how far each word and tag lies inside its left and right edges.
MARGINS = """() => [...document.querySelectorAll('svg.displacy')].flatMap(svg => {
    const box = svg.getBoundingClientRect();
    return [...svg.querySelectorAll('tspan.displacy-word, tspan.displacy-tag')]
        .filter(t => t.textContent.trim())
        .map(t => { const r = t.getBoundingClientRect();
                    return [t.textContent, r.left - box.left, box.right - r.right]; });
})"""


BACKGROUND = "getComputedStyle(e).backgroundColor"


def _each(page: Any, selector: str, expression: str) -> List[Any]:
    """RETURNS (List[Any]): The JavaScript `expression` of each element `e` that matches."""
    return page.eval_on_selector_all(selector, f"els => els.map(e => {expression})")


def test_no_word_is_clipped_in_chromium(browser):
    page = browser.new_page()
    page.set_content(render_relations(_oswald_doc()))
    margins = page.evaluate(MARGINS)
    page.close()
    assert "Lee Harvey Oswald" in [text for text, _, _ in margins]
    assert all(left >= 0 and right >= 0 for _, left, right in margins), margins


def test_the_page_in_chromium(browser, server, nlp):
    contract = doc_to_dict(nlp(RICH))
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(server)
    page.wait_for_function("document.getElementById('pipeline').textContent.includes('showcase')")
    assert "parsing" in page.inner_text("#tasks")
    page.fill("#text", RICH)
    page.click("#submit")
    page.wait_for_selector("#status:has-text('Done')", timeout=60_000)
    keys = page.eval_on_selector_all("section", "els => els.map(e => e.dataset.key)")
    assert keys == ["parse", "ents", "spans:ents", "relations", "coref", "tokens"]
    arcs = page.locator("#section-parse svg.displacy path.displacy-arc")
    assert arcs.count() == _non_root_tokens(contract)
    labels = _each(page, "#section-ents mark.entity span", "e.textContent.trim()")
    assert labels == [ent["label"] for ent in contract["ents"]]
    arc_labels = _each(page, "#section-relations textPath.displacy-label", "e.textContent")
    assert sorted(label.split()[0] for label in arc_labels) == sorted(
        r["label"] for r in contract["_"]["relations_json"]
    )
    swatches = _each(page, "#section-coref .swatch", BACKGROUND)
    n_clusters = sum(key.startswith("coref_clusters_") for key in contract["spans"])
    assert len(swatches) == n_clusters >= 2 and len(set(swatches)) == n_clusters
    marked = _each(page, "#section-coref div.spans span", BACKGROUND)
    assert set(swatches) <= set(marked)  # the mentions carry their cluster's colour
    margins = page.evaluate(MARGINS)
    assert margins and all(left >= 0 and right >= 0 for _, left, right in margins), margins
    METRICS.mkdir(exist_ok=True)
    page.screenshot(path=str(METRICS / "serve.png"), full_page=True)
    page.fill("#text", "x" * (LIVE_MAX_CHARS + 1))  # the error is shown, the page stays
    page.click("#submit")
    page.wait_for_selector("#status.error")
    assert "413" in page.inner_text("#status") and page.locator("section").count() == len(keys)
    page.close()
    assert os.path.getsize(METRICS / "serve.png") > 10_000
