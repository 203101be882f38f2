import sys

from liveshop.cli import main

sys.exit(main())
