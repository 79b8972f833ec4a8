"""Schemathesis over every operation of the API's /openapi.json, one loop for the unit and reliability suites."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import positive_data_acceptance

KEPT_DOC_ID = "00000000-0000-0000-0000-000000000000"


def fuzz_every_operation(
    operations: list[schemathesis.APIOperation], headers: dict[str, str], *, max_examples: int, keep_corpus: bool
) -> list[str]:
    """``max_examples`` generated requests per operation, each validated against the schema; the methods run.

    Not checked: "a schema-valid request is accepted". The schema cannot express the cross-field rules
    (top_k <= top_n, the last message is the user's, late interaction needs per-token vectors): 422.
    ``keep_corpus`` points every DELETE at an id that does not exist, so later cases still find the corpus.
    """
    checked: list[str] = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=max_examples,
            deadline=None,
            derandomize=True,  # the same examples every run: a failure reproduces
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def fuzz(case: schemathesis.Case) -> None:
            if keep_corpus and case.method.upper() == "DELETE":
                case.path_parameters = dict.fromkeys(case.path_parameters or {}, KEPT_DOC_ID)  # doc or conversation
            case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])
            checked.append(case.method)

        fuzz()
    return checked
