"""The standing fuzz suite: what every input to the codecs, the gateway and the gRPC server
must come to.

``oracles`` holds the checks (used by the atheris targets here and by the bounded property
tests under tests/); ``python -m fuzz [TARGET ...] --seconds N`` runs the atheris targets,
each in its own process, seeded from tests/golden, and prints what they ran (``make fuzz``).
"""
