"""Fetch the book's offline JavaScript into ``_vendor/`` by hand (the book's build does it too).

Usage: ``python scripts/vendor_assets.py [--dest _vendor]``. The logic lives in the book's Sphinx
extension, ``book/_ext/vendor_assets.py``.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "book" / "_ext"))

from vendor_assets import main  # noqa: E402

if __name__ == "__main__":
    main()
