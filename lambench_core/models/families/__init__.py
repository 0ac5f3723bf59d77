"""Built-in model families; importing this package registers their factories."""

from lambench_core.models.families import chgnet, dummy, emt, remote, sevenn

__all__ = ["chgnet", "dummy", "emt", "remote", "sevenn"]
