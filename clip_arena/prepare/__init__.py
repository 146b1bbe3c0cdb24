"""`clip-arena prepare`: a raw catalog CSV -> clean titles, attributes, a split and WebDataset shards."""
