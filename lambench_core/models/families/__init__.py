"""Built-in model families: one module per family, each registering one `Family`.

The registry imports every module of this package (those starting with '_' excepted) on its first
lookup, so adding a family is adding its module; nothing here lists them.
"""
