"""The seams hold: the real classes and the test fakes implement the same Protocols
(`agent.core.contracts`), and the public names of `tools` and the session core are what their
`__all__` says."""

from __future__ import annotations

import importlib
import inspect

import pytest

from agent.core import contracts as C


def test_the_fake_runtime_implements_the_protocols():
    from tests.tui.fakes import FakeRuntime, FakeTranscript

    rt = FakeRuntime()
    assert isinstance(rt, C.SessionRuntime)
    assert isinstance(rt.runner, C.SessionRunner)
    assert isinstance(rt.runner.persona, C.PersonaView)
    assert isinstance(FakeTranscript(), C.Transcript)


def test_the_real_runtime_implements_the_protocols(tmp_path, monkeypatch):
    from agent.core.runtime import build_runtime
    from agent.settings import Settings

    monkeypatch.setenv("FAL_PERSONA_HOME", str(tmp_path))
    rt = build_runtime(Settings(listen=True), "producer", source="ask")
    try:
        assert isinstance(rt, C.SessionRuntime)
        assert isinstance(rt.runner, C.SessionRunner)
        assert isinstance(rt.runner.persona, C.PersonaView)
        assert isinstance(rt.transcript, C.Transcript)
        assert rt.listener is not None and isinstance(rt.listener, C.WebhookListener)
        assert isinstance(rt.switch_persona("analyst"), C.SessionRunner)
        assert isinstance(rt.new_session(), C.SessionRunner)
    finally:
        import asyncio

        asyncio.run(rt.aclose())


def _members(proto: type) -> set[str]:
    return {n for n in dir(proto) if not n.startswith("_")} - set(dir(object))


@pytest.mark.parametrize("proto", [C.SessionRuntime, C.SessionRunner, C.Transcript, C.WebhookListener])
def test_the_real_classes_define_every_protocol_member(proto):
    """Checked on the classes too, so a member only a fake has fails here, not in the field."""
    from agent.core.runner import AgentRunner
    from agent.core.runtime import Runtime
    from agent.transcript.store import TranscriptStore
    from agent.triggers.listener import RunningListener

    real = {C.SessionRuntime: Runtime, C.SessionRunner: AgentRunner, C.Transcript: TranscriptStore,
            C.WebhookListener: RunningListener}[proto]
    fields = set(getattr(real, "__dataclass_fields__", {}))
    instance_attrs = set(inspect.signature(real.__init__).parameters)
    missing = [m for m in _members(proto) if not hasattr(real, m) and m not in fields
               and m not in instance_attrs and m not in _assigned_in_init(real)]
    assert not missing, f"{real.__name__} lacks {missing}"


def _assigned_in_init(cls: type) -> set[str]:
    import re

    source = inspect.getsource(cls.__init__)
    return set(re.findall(r"self\.(\w+)\s*(?::[^=]+)?=", source))


def _modules_of(*packages: str) -> list[str]:
    """Every module of `packages` (the packages themselves included), found on disk, so a new
    module is checked without being listed here."""
    import pkgutil

    found = []
    for name in packages:
        pkg = importlib.import_module(name)
        found.append(name)
        found += [info.name for info in pkgutil.walk_packages(pkg.__path__, name + ".")]
    return sorted(found)


@pytest.mark.parametrize("module", [*_modules_of("tools", "agent.core"), "agent.transcript"])
def test_public_names_match_all(module):
    mod = importlib.import_module(module)
    declared = set(mod.__all__)
    for name in declared:
        assert getattr(mod, name) is not None, f"{module}.{name} is in __all__ but missing"
    public = {n for n, v in vars(mod).items()
              if not n.startswith("_") and not inspect.ismodule(v)
              and getattr(v, "__module__", module) is not None
              and (getattr(v, "__module__", None) == module)}
    assert public <= declared, f"{module} defines public names not in __all__: {sorted(public - declared)}"


def _own_modules():
    import pkgutil

    import agent
    import tools

    for pkg in (agent, tools):
        for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
            if info.name.endswith("__main__"):
                continue
            yield info.name


def test_every_error_class_derives_from_the_one_app_error():
    """One root (tools.errors.AppError): an error class defined anywhere in agent/ or tools/
    that does not derive from it is a second root."""
    from tools.errors import AppError

    roots = []
    for name in _own_modules():
        try:
            mod = importlib.import_module(name)
        except ImportError as exc:  # an optional dependency missing: say which, skip it
            pytest.skip(f"{name}: {exc}")
        for value in vars(mod).values():
            if (inspect.isclass(value) and issubclass(value, BaseException)
                    and value.__module__ == name and not value.__name__.startswith("_")
                    and not issubclass(value, AppError)):
                roots.append(f"{name}.{value.__name__}")
    assert not roots, f"error classes outside the AppError tree: {roots}"
