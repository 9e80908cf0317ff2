"""Stage ``limit``: the LIMIT-style retrieval benchmark, and the retriever that feeds annotation.

- :mod:`~tasks.limit.generator` (with :mod:`~tasks.limit.vocab`): LIMIT-style sets, "likes" and
  biomedical;
- :mod:`~tasks.limit.beir`: BEIR folders in and out;
- :mod:`~tasks.limit.retrieval`: BM25, dense, hybrid and late-interaction retrievers;
- :mod:`~tasks.limit.evaluation`, :mod:`~tasks.limit.metrics`, :mod:`~tasks.limit.report`: recall@k
  and the report; :mod:`~tasks.limit.free`: the free-embedding experiment.
"""
