import os

import torch
from hypothesis import settings

# Hypothesis profiles: "default" keeps the suite fast; "fuzz" (HYPOTHESIS_PROFILE=fuzz, the
# project command `fuzz`) runs 10,000 cases per property. No deadline: the cases run whole
# pipelines and brute-force decoders, and a busy machine would make timings flaky.
settings.register_profile("default", max_examples=150, deadline=None)
settings.register_profile("fuzz", max_examples=10_000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

# The test models are tiny: with more than one intra-op thread, torch spends most of each call
# synchronizing threads (about 100x slower per op on a 2-core machine). Subprocesses started
# by the tests (spacy train, n_process) inherit these settings.
torch.set_num_threads(1)
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
