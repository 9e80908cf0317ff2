"""Stage ``corpus``: knowledge tables from packaged sources and the deduplicated text corpus.

- :mod:`~tasks.corpus.knowledge`: HPO, JASPAR, protein HMMs, PerturbQA and marker genes as tables;
- :mod:`~tasks.corpus.documents`: one document per entity, user sources, exact and MinHash dedup.
"""
