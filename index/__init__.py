"""The Parquet master vector file (catalog), the embedding builder and FAISS indices."""
