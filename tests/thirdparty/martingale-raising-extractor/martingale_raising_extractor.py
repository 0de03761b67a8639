"""An extractor with a bug: it raises on every transcript."""

from martingale_harness.plugin_api import hookimpl


class Raising:
    name = "raising"

    async def extract(self, transcript):
        raise ZeroDivisionError("a bug in a third-party extractor")


@hookimpl
def martingale_register_extractors(register):
    register(Raising())
