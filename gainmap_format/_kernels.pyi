# Types of the C extension built from _kernels.c (see its module comment and native.py).
import numpy as np

variant: str

def fit_batch(
    height: int, width: int, hidden: int, relu: bool, scale: float, threads: int, seed: int, step: int, count: int,
    code: np.ndarray, target: np.ndarray, colour: np.ndarray, row: np.ndarray, col: np.ndarray,
    W2: np.ndarray, W2T: np.ndarray, b2: np.ndarray, W3T: np.ndarray, b3: np.ndarray,
    g_colour: np.ndarray, g_row: np.ndarray, g_col: np.ndarray, g_W2: np.ndarray, g_b2: np.ndarray,
    g_W3T: np.ndarray, g_b3: np.ndarray, scratch: np.ndarray,
) -> float: ...
def draw_indices(seed: int, step: int, count: int, pixels: int, out: np.ndarray) -> None: ...
def decode(
    height: int, width: int, hidden: int, relu: bool, gamma: bool, scale: float, offset: float, weight: float,
    epsilon: float, linear_scale: float, threads: int, code: np.ndarray, colour: np.ndarray, row: np.ndarray,
    col: np.ndarray, W2: np.ndarray, b2: np.ndarray, W3T: np.ndarray, b3: np.ndarray, lut: np.ndarray,
    matrix: np.ndarray, pq_out: np.ndarray | None, linear_out: np.ndarray,
) -> None: ...
