"""Converters from CoNLL-2000, CoNLL-U, Universal NER (IOB2), SpERT JSON, SICK, LitBank
(coreference, entities) and GAP files to spaCy
Docs and DocBin files. The readers live in `spacy_jmt.converters`; this module picks one by
format name and writes DocBins."""

from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import spacy
from spacy.tokens import Doc, DocBin
from spacy.vocab import Vocab

from .converters.base import CHUNKS_KEY, ENTS_KEY, DataFormatError, DataWarning
from .converters.conll import _chunks_from_iob, read_conll2000, read_conllu
from .converters.coref import read_gap, read_litbank_coref, read_litbank_entities, select_documents
from .converters.entities import (
    EntityOverlap,
    MergeReport,
    merge_uner,
    merge_uner_into_conllu,
    read_spert,
    read_uner,
    spert_to_docs,
)
from .converters.sick import read_sick

__all__ = [
    "CHUNKS_KEY",
    "ENTS_KEY",
    "DataFormatError",
    "DataWarning",
    "EntityOverlap",
    "MergeReport",
    "READERS",
    "_chunks_from_iob",
    "convert",
    "merge_uner",
    "merge_uner_into_conllu",
    "read_conll2000",
    "read_conllu",
    "read_docs",
    "read_sick",
    "read_gap",
    "read_litbank_coref",
    "read_litbank_entities",
    "read_spert",
    "read_uner",
    "spert_to_docs",
    "select_documents",
    "split_dev",
    "write_docbin",
]

READERS: Dict[str, Callable[[Path, Vocab, int], List[Doc]]] = {
    "conll2000": read_conll2000,
    "conllu": read_conllu,
    "uner": read_uner,
    "spert": read_spert,
    "sick": read_sick,
    "litbank-coref": read_litbank_coref,
    "litbank-entities": read_litbank_entities,
    "gap": read_gap,
}


def read_docs(
    input_path: Path,
    fmt: str,
    n_sents: int = 10,
    lang: str = "en",
    uner_path: Optional[Path] = None,
    spans_key: str = ENTS_KEY,
) -> List[Doc]:
    """Read a file in one of the supported formats into Docs.

    input_path (Path): The file to read.
    fmt (str): The format, one of READERS ("conll2000", "conllu", "uner", "spert", "sick").
    n_sents (int): Sentences (for "spert": items) per Doc; ignored for "sick" (one pair
        per Doc).
    lang (str): The language code of the vocab.
    uner_path (Optional[Path]): With "conllu": a Universal NER file whose entities are
        merged into the UD sentences by sent_id (`merge_uner_into_conllu`, entities
        projected through the characters where the tokenizations differ, with a warning).
    spans_key (str): The span group that holds all gold entities ("uner", "spert", or
        "conllu" with uner_path), so that corpora with different entity schemes can feed
        different span tasks.
    RETURNS (List[Doc]): The Docs, in file order.
    """
    if fmt not in READERS:
        raise ValueError(f"Unknown format {fmt!r}; accepted formats: {', '.join(READERS)}")
    vocab = spacy.blank(lang).vocab
    if uner_path is not None:
        if fmt != "conllu":
            raise ValueError("a Universal NER file can only be merged into CoNLL-U (conllu)")
        docs = merge_uner_into_conllu(
            Path(input_path), Path(uner_path), vocab, n_sents, on_mismatch="project"
        )
    else:
        docs = READERS[fmt](Path(input_path), vocab, n_sents)
    if spans_key != ENTS_KEY:
        for doc in docs:
            if ENTS_KEY in doc.spans:
                doc.spans[spans_key] = list(doc.spans[ENTS_KEY])
                del doc.spans[ENTS_KEY]
    return docs


def split_dev(docs: List[Doc], dev_fraction: float) -> Tuple[List[Doc], List[Doc]]:
    """Split off the last round(dev_fraction * len(docs)) Docs as a dev set.

    The dev set is a contiguous block at the end of the file, so that no text is split
    between train and dev (for CoNLL-2000: the end of WSJ section 18).

    docs (List[Doc]): The Docs, in file order.
    dev_fraction (float): The fraction of Docs for dev, 0 <= dev_fraction < 1.
    RETURNS (Tuple[List[Doc], List[Doc]]): The train Docs and the dev Docs.
    """
    if not 0.0 <= dev_fraction < 1.0:
        raise ValueError(f"dev_fraction must be in [0, 1), got {dev_fraction}")
    n_dev = round(dev_fraction * len(docs))
    if dev_fraction > 0 and (n_dev == 0 or n_dev == len(docs)):
        raise ValueError(
            f"Cannot split {len(docs)} docs into non-empty train and dev sets "
            f"with dev_fraction {dev_fraction}"
        )
    return docs[: len(docs) - n_dev], docs[len(docs) - n_dev :]


def write_docbin(docs: List[Doc], output_path: Path) -> None:
    """Write Docs to a .spacy DocBin file, creating its directory if needed.

    docs (List[Doc]): The Docs to write.
    output_path (Path): The output file.
    """
    output_path = Path(output_path)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    DocBin(docs=docs, store_user_data=True).to_disk(output_path)


def convert(
    input_path: Path, output_path: Path, fmt: str, n_sents: int = 10, lang: str = "en"
) -> int:
    """Convert a file in one of the READERS formats to a DocBin (.spacy) file.

    input_path (Path): The file to convert.
    output_path (Path): The .spacy file to write.
    fmt (str): The input format: "conll2000", "conllu", "uner", "spert" or "sick".
    n_sents (int): Sentences per Doc.
    lang (str): The language code of the vocab.
    RETURNS (int): The number of Docs written.
    """
    docs = read_docs(input_path, fmt, n_sents=n_sents, lang=lang)
    write_docbin(docs, output_path)
    return len(docs)
