"""The runner tests' shared fixtures (defined in agent_support), found by pytest through this conftest."""

from agent_support import approve, fake_tools, fal, personas, reject, transcript  # noqa: F401 - fixtures pytest collects by name
