"""Engines that run `embed` and `score` past one machine. The local engine lives where it always
did (index/embed.py, analyzer/batch.py); everything here reuses its row-level functions, so every
engine writes the same rows. Modules importing Ray load only when `--engine ray` is asked for."""
