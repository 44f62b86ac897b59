"""Entry point of ``python -m analytics``."""

import gc
import sys

# Start-up loads SQLAlchemy and pandas: hundreds of thousands of objects that live as long as
# the process. The cyclic collector would walk them again and again while they load, and once
# more at exit, a quarter of a quick report's time (issue #9). So it is off while they load,
# and they are then frozen out of its sight; what the command creates is collected as usual.
gc.disable()
from analytics.cli import main  # noqa: E402

gc.freeze()
gc.enable()
sys.exit(main())
