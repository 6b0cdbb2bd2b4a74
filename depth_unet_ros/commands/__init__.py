"""The ``depth-unet`` sub-commands, one module each (``add_arguments`` + ``run``); ``cli`` lists them.

A command imports its heavy libraries inside ``run``, so ``depth-unet --help`` works anywhere.
"""
