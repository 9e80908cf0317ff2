"""Stage ``textify``: omics written as text (``<cell>``, ``<dna>``, ``<protein>``).

- :mod:`~tasks.textify.cells`: AnnData in chunks -> QC -> ranked top-k gene names -> cell sentences;
- :mod:`~tasks.textify.ranking`: the numba kernels that rank genes within each cell of a CSR chunk;
- :mod:`~tasks.textify.sequences`: DNA windows and protein texts with validated alphabets.
"""
