"""spacy-jmt: a hierarchical multi-task pipeline component for spaCy.

Importing the package registers nothing by itself and imports no torch: spaCy finds the
`jmt` factory, the architectures, the scorer and the reader through entry points.
"""

__version__ = "0.1.0"
