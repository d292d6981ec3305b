"""The YANG modules qstrata serves (and their example instance documents), shipped as package
data of `qstrata.yang` so a wheel carries them. Read them through `YANG_DIR`."""

from pathlib import Path

YANG_DIR = Path(__file__).resolve().parent
