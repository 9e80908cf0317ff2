"""The training stages ``pretrain``, ``sft`` and ``grpo``: each runs as a child process.

- :mod:`~tasks.train.pretrain`: continued pretraining on packed blocks of the corpus;
- :mod:`~tasks.train.sft`: instruction-alignment then cold-start SFT (TRL, assistant-only loss);
- :mod:`~tasks.train.grpo`: offline multi-trace GRPO (:mod:`~tasks.train.multitrace`) then online
  GRPO (TRL) with the verifiers; :mod:`~tasks.train.grpo_data` builds its data and
  :mod:`~tasks.train.heldout` its held-out check;
- :mod:`~tasks.train.packing`: token blocks for pretraining.
"""
