# Loaded by inspect through the `inspect_ai` entry point: importing registers tasks and providers.
from martingale.tasks import forecast  # noqa: F401
from martingale_harness.backends.sim_provider import SimulatedReasonerAPI  # noqa: F401
