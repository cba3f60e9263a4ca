"""pyro_dgm.data."""
