"""Tolerances shared by the test files (one value each, named for what it allows).

EXACT   two computations of the same quantity in float64 that differ only by rounding
        (fast path = autograd, a closed form = the engine, MAML = FOMAML - alpha HVP)
FD_TOL  a derivative against central finite differences in float64 (truncation error ~ eps^2)
"""
EXACT = 1e-10
FD_TOL = 1e-6
