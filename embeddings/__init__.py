"""Product and user embeddings. Nothing heavy is imported here: torch and
sentence-transformers load only when an encoder first encodes."""
