"""From a transcript to beliefs: inspect-free turn records, the extractor contract, reading rules."""
