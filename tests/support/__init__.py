"""Loopback servers that speak the protocols of the services tests cannot reach (HTTP Range, the Hub API)."""
