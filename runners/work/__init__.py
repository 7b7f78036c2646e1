"""The work being gated: LoRA SFT, the adapter merge and batched generation."""
