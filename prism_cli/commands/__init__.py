"""One module per command group; each exposes register(app) and imports heavy things lazily."""

from prism_cli.commands import (
    allow_cmd,
    chat_cmd,
    check_cmd,
    config_cmd,
    eval_cmd,
    logs_cmd,
    models_cmd,
    policy_cmd,
    scan_cmd,
    serve_cmd,
)

COMMAND_MODULES = [check_cmd, scan_cmd, chat_cmd, serve_cmd, models_cmd, policy_cmd, eval_cmd, logs_cmd, config_cmd, allow_cmd]
