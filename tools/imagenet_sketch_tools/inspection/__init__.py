"""Looking at a dataset: counts and image checks (info, verify) and contact sheets (peek)."""
