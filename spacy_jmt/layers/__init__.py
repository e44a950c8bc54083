"""Torch modules of the jmt network that know no task kind: the BiLSTM building blocks
(encoder), the stack of levels (network) and the messages between tasks (communication).
This package's own module imports no torch."""

# The communication structures between task layers (spacy_jmt.layers.communication).
STRUCTURES = ("none", "complete", "star")
