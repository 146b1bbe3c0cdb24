"""Contrastive fine-tuning of open_clip models on a catalog: full, linear probe and LoRA scenarios."""
