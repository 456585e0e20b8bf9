"""``batchgen mock``: a fal-compatible queue emulator for tests, benchmarks and dry runs.

It speaks the protocol of ``shared/fal-queue-protocol.md`` over real HTTP: submit, status
(polled or streamed), result and cancel, a per-key concurrency cap with honest queue
positions, scaled latencies, real MP4 outputs on a public file route, fal's storage routes
(uploads served back; models refuse file URLs it did not serve), and seeded faults.

    async with MockServer(MockConfig(time_scale=0.001)) as server:
        ...  # talk to server.base_url, then assert on server.stats()

May import: ``batchgen.plan`` (endpoint specs) and ``batchgen.errors`` only, never the client:
the emulator follows the protocol notes, not batchgen's own reading of them.
"""

from batchgen.mock.app import make_app
from batchgen.mock.config import MockConfig
from batchgen.mock.server import MockServer, MockThread, serve

__all__ = ["MockConfig", "MockServer", "MockThread", "make_app", "serve"]
