import sys

from groovae.cli import main

sys.exit(main())
