"""The personas shipped with fal-persona, one TOML file each (data only; see agent/personas.py).

A package so the files travel inside the wheel and are found wherever it is installed:
`agent.locations.shipped_personas_dir()` reads them through `importlib.resources`.
"""
