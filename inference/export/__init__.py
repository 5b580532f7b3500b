"""Offline export: Hugging Face BLIP -> two ONNX graphs plus everything serving needs.

Needs the ``export`` extra (torch, transformers). Never imported by the serving process.
"""
