"""The dataset itself: the class table, the release's facts, reading and writing archives, sources, the sample."""
