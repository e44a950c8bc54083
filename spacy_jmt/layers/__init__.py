"""Torch modules of the jmt network that know no task kind: the BiLSTM building blocks
(encoder), the stack of levels (network) and the messages between tasks (communication).
This package's own module imports no torch."""

# The communication structures between task layers (spacy_jmt.layers.communication).
STRUCTURES = ("none", "complete", "star")

# How the tasks' losses are summed (the model setting `loss_weights`); with "uncertainty" the
# network learns a log variance per task and gives it, in training, under LOG_VARIANCES.
LOSS_WEIGHTS = ("fixed", "uncertainty")
LOG_VARIANCES = "_log_variances"
