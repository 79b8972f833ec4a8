"""Grounding: the gate and verifier contracts, their implementations, the evidence selector, the prompt,
the citation grammar and the claim parser they share."""
