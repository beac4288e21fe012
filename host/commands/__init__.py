"""The `tinysplit` subcommands: one module each, with `add_parser(subparsers)` and
`run(args) -> result`. A result that is not None is printed as JSON under `--json`. Adding a
command is one module here and one line in COMMANDS."""

COMMANDS = (
    "export",
    "build",
    "train",
    "simulate",
    "infer",
    "export-model",
    "demo",
    "soak",
    "check",
    "size",
    "bench",
    "plan",
    "audit",
)
