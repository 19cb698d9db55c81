"""import-linter contract types of our own (pyproject.toml: [tool.importlinter] contract_types).

`required`: each of `importers` imports `imported`, directly or through other project modules (a
package counts with everything in it). import-linter's own types can only forbid imports; this
one states that two components share one implementation, e.g. that the streaming job and training
compute features with the same module (no second copy that could drift from it).
"""

from __future__ import annotations

from grimp import ImportGraph
from importlinter.application import output
from importlinter.domain import fields
from importlinter.domain.contract import Contract, ContractCheck


class RequiredImportContract(Contract):
    type_name = "required"

    importers = fields.ListField(subfield=fields.StringField())
    imported = fields.StringField()

    def check(self, graph: ImportGraph, verbose: bool) -> ContractCheck:
        imported = str(self.imported)  # type: ignore[arg-type]
        problems = []
        for importer in self.importers:  # type: ignore[attr-defined]
            if importer not in graph.modules:
                problems.append(f"{importer} does not exist")
            elif imported not in graph.modules:
                problems.append(f"{imported} does not exist")
            elif not graph.chain_exists(importer=importer, imported=imported, as_packages=True):
                problems.append(f"{importer} does not import {imported}")
        return ContractCheck(kept=not problems, warnings=None, metadata={"problems": problems})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for problem in check.metadata["problems"]:
            output.print_error(f"- {problem}")
            output.new_line()
