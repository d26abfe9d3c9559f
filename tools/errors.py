"""The one root of fal-persona's own errors, and the tree under it.

Everything the application raises on purpose derives from :class:`AppError`, so a caller at an
edge (the CLI's ``main``, the TUI's error card, a webhook rule's retry loop) can tell "we
reported this" from "this is a bug" with one ``except``. Errors that were value errors before
keep ``ValueError`` as a second base, so existing ``except ValueError`` still holds. The root
lives in ``tools`` because ``tools`` imports nothing from ``agent``.

::

    AppError
    ├── FalError                    tools.fal.errors: every fal.ai client failure (its own tree)
    ├── WebhookVerificationError    tools.webhooks: a delivery that is not fal's (401)
    ├── JwksError                   tools.webhooks: the signing keys cannot be had (503)
    │   └── KeysMayHaveRotated      no cached key fits and a refetch is not allowed yet
    ├── SettingsError-like          (pydantic's ValidationError; shown by settings_error_text)
    ├── PersonaError                agent.personas: a persona file names its file and field
    ├── UserConfigError             agent.userconfig: the user's config.toml is unreadable
    ├── TranscriptError             agent.transcript.store: the transcript cannot be written
    ├── MediaError                  agent.media: a result file cannot be downloaded or saved
    │   ├── MediaTooLarge           over the cap
    │   └── MediaDownloadError      network, HTTP status, bad data: URL
    ├── ModelStreamCutError         agent.core.models: the model's stream ended mid-answer
    ├── GrammarError                agent.planner.grammar: the offline planner cannot parse it
    ├── CliError                    agent.cli: bad usage, printed as one line (exit 2)
    ├── WebError                    agent.tui.web: `fal-persona web` cannot serve as asked
    └── trigger errors              agent.triggers
        ├── RuleError               a rules file names its file and rule
        ├── CronError               a schedule's cron expression is invalid
        ├── PayloadError            a webhook body is not fal's shape
        ├── ActionError             a rule's action failed (``retryable`` or not)
        └── ServeError              `webhooks serve` cannot start as asked
"""

from __future__ import annotations


class AppError(Exception):
    """Base of every error fal-persona raises on purpose; ``str()`` is fit to show a person."""


__all__ = ["AppError"]
