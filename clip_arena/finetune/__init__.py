"""Contrastive fine-tuning of open_clip models on a catalog or its WebDataset shards: full, linear probe and LoRA scenarios."""
