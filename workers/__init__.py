"""The GPU side of the workbench: model loading, prompt rendering, batched generation and the `gpu` queue's tasks.

torch, transformers and peft are imported here only, and lazily, so the web tier starts without them.
"""
