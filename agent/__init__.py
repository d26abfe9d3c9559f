"""The fal-persona application: settings, personas, the agent runner, the transcript, triggers,
the Textual TUI and the CLI. It uses ``tools``; ``tools`` never imports it."""
