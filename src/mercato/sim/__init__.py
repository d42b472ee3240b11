"""Order flow for the engine: CSV replay and a seeded, reproducible market simulator."""
