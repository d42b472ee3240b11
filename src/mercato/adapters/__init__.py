"""Adapters: implementations of the ports in ``mercato.ports`` (files, buses, stores)."""
