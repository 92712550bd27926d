"""Allow ``python -m controller`` as well as the ``homeostat`` script."""

from controller import cli

cli.main()
