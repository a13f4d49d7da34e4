# Types of the compiled NNSTD kernels (topo/_nnstd_kernels.c); see topo.assignment.
import numpy as np

def jaccard(a_indptr: np.ndarray, a_indices: np.ndarray, b_indptr: np.ndarray,
            b_indices: np.ndarray, col_map: np.ndarray, n_cols: int,
            dense_out: np.ndarray | None, /
            ) -> tuple[bytearray, bytearray, bytearray] | bool | None: ...

def solve(n_a: int, n_b: int, indptr: np.ndarray, indices: np.ndarray, values: np.ndarray,
          col_of: np.ndarray, u: np.ndarray, v: np.ndarray, warm: bool = ..., /) -> None: ...

def reduced(dense: np.ndarray, n_b: int, rows: np.ndarray | None, u: np.ndarray | None,
            v: np.ndarray | None, below: float, mask: np.ndarray | None = ..., /
            ) -> tuple[bytearray, bytearray, bytearray]: ...

def potentials(k: np.ndarray, head: np.ndarray, w: np.ndarray, hub_w: np.ndarray,
               p: np.ndarray, step: float, /) -> bool: ...

def graph_check(rows: np.ndarray, cols: np.ndarray, values: np.ndarray, u: np.ndarray,
                v: np.ndarray, tol: float, margin: float, keep: np.ndarray, /
                ) -> tuple[bool, bytearray | None]: ...
