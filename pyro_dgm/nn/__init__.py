"""pyro_dgm.nn."""
