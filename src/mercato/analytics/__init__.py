"""Analytics over history and live data (issue 13): the historical store (Parquet
partitions by day and symbol, written in batches off the order path), candles at any
interval, indicators, and portfolio performance. Polars does the columnar work; money
stays integer, and statistics that are ratios are floats, as ``docs/analytics.md`` says."""
