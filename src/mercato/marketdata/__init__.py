"""Market data: pure builders (books, bars, statistics), its events and its wire codec."""
