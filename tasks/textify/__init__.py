"""Stage ``textify``: omics written as text (``<cell>``, ``<dna>``, ``<protein>``).

- :mod:`~tasks.textify.readers`: .h5ad (backed), 10x .h5 / matrix.mtx, scanpy datasets; the layer and
  the var column of gene symbols; refusals naming what the file holds;
- :mod:`~tasks.textify.cells`: chunks -> QC -> ranked top-k gene names -> cell sentences (whole, or as
  parts written by Dask workers and merged);
- :mod:`~tasks.textify.ranking`: the numba kernels that rank genes within each cell of a CSR chunk;
- :mod:`~tasks.textify.sequences`: DNA windows and protein texts with validated alphabets.
"""
