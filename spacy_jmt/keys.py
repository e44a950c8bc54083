"""The names the converters, the task kinds and the benchmark share."""

CHUNKS_KEY = "chunks"  # the span group with the phrase chunks (CoNLL-2000)
ENTS_KEY = "ents"  # the span group with the gold entities (entity corpora)
NOUN_CHUNK_LABEL = "NP"  # the chunk label that doc.noun_chunks yields
MENTIONS_KEY = "mentions"  # gold and predicted entity mentions (nested)
CLUSTER_PREFIX = "coref_clusters_"  # spaCy's convention: coref_clusters_1, _2, ...
COREF_MENTIONS_KEY = "coref_mentions"  # the gold mentions of coreference corpora
CORPUS_KEY = "spacy_jmt.corpus"  # Doc.user_data: the MultiCorpus corpus a reference doc is from
