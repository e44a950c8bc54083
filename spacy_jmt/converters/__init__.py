"""The data converters, one module per family of formats; `spacy_jmt.convert` is the entry."""
