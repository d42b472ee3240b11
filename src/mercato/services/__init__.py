"""Services: asyncio processes that wire the ports to the engine (no business rules)."""
