import os

import torch

# The test models are tiny: with more than one intra-op thread, torch spends most of each call
# synchronizing threads (about 100x slower per op on a 2-core machine). Subprocesses started
# by the tests (spacy train, n_process) inherit these settings.
torch.set_num_threads(1)
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
