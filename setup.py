"""Build of topo's one compiled module; everything else is declared in pyproject.toml.

``topo._nnstd_kernels`` (topo/_nnstd_kernels.c, plain C on the CPython API) holds NNSTD's
Jaccard cost builder and its assignment solver with duals. It is optional: where it cannot
be compiled (no C compiler) the install still succeeds and ``topo.assignment`` takes its
NumPy path, with the same results.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("topo._nnstd_kernels", sources=["topo/_nnstd_kernels.c"],
                             optional=True)])
