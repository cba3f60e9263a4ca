"""pyro_dgm.infer."""
