"""Sub-commands of ``lora-verify``: each module has ``register(subparsers)`` that adds its parser
and sets ``func(args) -> int``."""
