import sys

from liveshop.app.cli import main

sys.exit(main())
