"""pyro_dgm.diagnostics."""
