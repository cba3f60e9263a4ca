"""pyro_dgm.distributions."""
