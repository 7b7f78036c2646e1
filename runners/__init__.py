"""sftgate runners: the work being gated (LoRA SFT, merge, generation, the pipeline) and the CLI.

Runners import gates; gates never import runners. Heavy imports (torch, transformers, peft)
happen inside functions so that ``sftgate --help`` and the CPU-only commands stay fast.
"""
