"""pyro_dgm.models."""
