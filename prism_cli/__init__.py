"""prism: moderation beside open-weights language models, on the CPU, offline.

Importing any part of prism turns off the telemetry of the runtimes it loads, before
they load: onnxruntime (>= 1.29 on Linux/macOS) otherwise writes a device id under
~/.cache/Microsoft and uploads events to a Microsoft collector. The switch is read once,
when onnxruntime's library initialises, so it must be in the environment first; a program
that imported onnxruntime before prism_cli has already made that choice itself.
"""

import os as _os

__version__ = "0.1.0"

# Forced, not defaulted: prism promises that nothing leaves the machine.
_os.environ["ORT_DISABLE_TELEMETRY"] = "1"
_os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"  # `models pull` talks to the Hub, and only for the files
