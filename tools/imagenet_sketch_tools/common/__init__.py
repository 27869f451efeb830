"""Helpers every concern shares: the user-facing error, file-system rules, decoding images."""
