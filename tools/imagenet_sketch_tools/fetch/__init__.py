"""Getting the release archive: the verified, resumable download and the mirror chain."""
