"""Votes: the durable SQLite store, statistics, figures, import and export. No Gradio here."""
