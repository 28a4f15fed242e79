"""optimlib: the optimizer pieces that several submissions share, apart from the engine (harness).

Small composable pieces, one job each (optax style), built on torch alone; see docs/optimlib.md.
"""
