"""Stand-in for ansible-test's get-pip bootstrap script, for machines that cannot reach ci-files.testing.ansible.com.

ansible-test runs its cached ``get_pip_<version>.py`` inside each fresh sanity venv with pip
install arguments. This does the same with the interpreter's bundled ``ensurepip`` and then
PyPI, which CI can reach. ``make sanity`` copies it into ansible-test's cache.
"""

import ensurepip
import os
import subprocess
import sys

# get-pip.py's own flags; pip install does not know them.
GET_PIP_ONLY = {"--no-setuptools", "--no-wheel"}

if __name__ == "__main__":
    # ensurepip points PIP_CONFIG_FILE at /dev/null in this process; the real install must see
    # the machine's pip configuration (its CA bundle and mirrors), so keep the environment.
    environment = dict(os.environ)
    ensurepip.bootstrap(upgrade=True)
    arguments = [a for a in sys.argv[1:] if a not in GET_PIP_ONLY]
    sys.exit(subprocess.call([sys.executable, "-m", "pip", "install"] + arguments, env=environment))
