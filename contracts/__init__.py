"""Wire schemas shared by the gateway and the inference service.

This package imports nothing of ours: both services depend on it, never the other way round.
"""
