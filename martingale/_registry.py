# Loaded by inspect through the `inspect_ai` entry points: importing registers the tasks, the sim
# provider, and one scorer per installed extractor (for `inspect score --scorer martingale_harness/<name>`).
from martingale.tasks import forecast  # noqa: F401
from martingale_harness.backends.local import LocalModelAPI  # noqa: F401  (torch loads only when used)
from martingale_harness.backends.sglang import SGLangLoRAAPI  # noqa: F401  (routes sglang/<model>+<adapter>)
from martingale_harness.backends.sim_provider import SimulatedReasonerAPI  # noqa: F401
from martingale_harness.scoring.scorer import register_all_scorers

register_all_scorers()
from martingale_harness.protocol.refusals import install_excepthook  # noqa: E402

install_excepthook()  # inspect set its own hook before loading entry points; a refusal under --display none is heard
