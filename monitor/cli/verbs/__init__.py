"""One module per CLI verb: each builds its pieces and runs them."""
