"""The names the converters, the task kinds and the benchmark share."""

CHUNKS_KEY = "chunks"  # the span group with the phrase chunks (CoNLL-2000)
ENTS_KEY = "ents"  # the span group with the gold entities (entity corpora)
NOUN_CHUNK_LABEL = "NP"  # the chunk label that doc.noun_chunks yields
