"""``python -m frpo_core.toy``: write every shipped toy file again from the code that makes it."""

from frpo_core.toy.assets import write_shipped

for path in write_shipped():
    print(path)
