"""Cross-document logic: exact, MinHash/LSH, bottom-k, shingles, SemDeDup and decontamination (pure, no Beam)."""
