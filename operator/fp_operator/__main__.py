"""`python -m fp_operator run|crd`: the operator image's entry point. It loads only the operator's
own commands, not every `fraudpipe` subcommand (and what those import)."""

from fp_operator.cli import app

if __name__ == "__main__":
    app(prog_name="fp_operator")
