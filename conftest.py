"""Repository-wide pytest set-up: the drill environment (one exchange double on 0.0.0.0 and one
drill fleet per session) is a plugin, so every suite that needs it shares the same fleet."""

import os
import sys

TESTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tests")
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)

pytest_plugins = ("support.drill",)
