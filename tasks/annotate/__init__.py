"""Stage ``annotate``: teacher rationales, restructuring, reverse verification, multi-trace variants.

- :mod:`~tasks.annotate.steps`: the stage's steps (teacher call, restructure, verify, render chats);
- :mod:`~tasks.annotate.teachers`: OpenAI-compatible and in-process vLLM teachers, with the cache of
  :mod:`~tasks.annotate.call_cache`;
- :mod:`~tasks.annotate.rationales`: the offline knowledge-grounded teacher and evidence checker,
  over the facts of :mod:`~tasks.annotate.evidence` and :mod:`~tasks.annotate.derivations`;
- :mod:`~tasks.annotate.traces`: the trace schema and BiomniGEM's fixed-reward variants.
"""
