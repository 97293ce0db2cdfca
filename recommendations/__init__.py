"""Precomputed recommendation tables: per-user top-K, similar products, popular and trending."""
