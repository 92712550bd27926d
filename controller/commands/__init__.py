"""Sub-command groups of the ``homeostat`` CLI; composition roots like ``cli`` itself."""
