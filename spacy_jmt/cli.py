"""The spacy-jmt command line: one function per command."""

from enum import Enum
from pathlib import Path
from typing import Annotated, NoReturn, Optional

import typer

from .convert import read_docs, split_dev, write_docbin

app = typer.Typer(
    name="spacy-jmt",
    help="spacy-jmt: hierarchical multi-task learning for spaCy.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def main() -> None:
    """spacy-jmt: hierarchical multi-task learning for spaCy."""


class InputFormat(str, Enum):
    conll2000 = "conll2000"
    conllu = "conllu"


def _fail(message: str) -> NoReturn:
    """Print a one-line error and exit with status 1.

    message (str): What went wrong.
    """
    typer.echo(f"Error: {message}", err=True)
    raise typer.Exit(code=1)


@app.command("convert")
def convert_cli(
    input_path: Annotated[
        Path, typer.Argument(metavar="INPUT", help="Input file (CoNLL-2000 or CoNLL-U).")
    ],
    output_path: Annotated[
        Path, typer.Argument(metavar="OUTPUT", help="Output .spacy (DocBin) file.")
    ],
    fmt: Annotated[
        InputFormat,
        typer.Option(
            "--format",
            "-f",
            help="Input format: conll2000 (word POS chunk per line) or conllu (CoNLL-U).",
        ),
    ],
    n_sents: Annotated[int, typer.Option("--n-sents", "-n", min=1, help="Sentences per Doc.")] = 10,
    lang: Annotated[str, typer.Option("--lang", "-l", help="Language code of the vocab.")] = "en",
    dev_fraction: Annotated[
        float,
        typer.Option(
            "--dev-fraction",
            help="Fraction of Docs to hold out as dev set: the last round(F * number of Docs) "
            "Docs of the file, a contiguous block, go to --dev-output. 0 = no dev set.",
        ),
    ] = 0.0,
    dev_output: Annotated[
        Optional[Path],
        typer.Option("--dev-output", help="Output .spacy file for the dev Docs."),
    ] = None,
) -> None:
    """Convert a CoNLL-2000 or CoNLL-U file to a .spacy (DocBin) file."""
    if (dev_fraction > 0) != (dev_output is not None):
        _fail("--dev-fraction > 0 and --dev-output must be given together")
    if not input_path.is_file():
        _fail(f"input file not found: {input_path}")
    outputs = [output_path] if dev_output is None else [output_path, dev_output]
    try:  # ValueError includes DataFormatError; ImportError: unknown --lang
        docs = read_docs(input_path, fmt.value, n_sents=n_sents, lang=lang)
        for path, part in zip(outputs, split_dev(docs, dev_fraction)):
            write_docbin(part, path)
            n_sentences = sum(1 for doc in part for _ in doc.sents)
            typer.echo(f"Wrote {len(part)} docs ({n_sentences} sentences) to {path}")
    except (ValueError, OSError, ImportError) as err:
        _fail(str(err))
