"""The endpoint registry: which authorities exist, how to reach them."""
