"""The reference adapter an authority runs in front of its own data.

It speaks ``federator-lookup/1`` (see :mod:`adapters.protocol`): it verifies
the broker's signed request, matches the child against the authority's
records, applies the authority's local policy and answers with the
professionals involved. It never imports ``federator``.
"""

from adapters.kit.app import create_kit_app
from adapters.kit.settings import KitSettings, SettingsError, load_settings

__all__ = ["KitSettings", "SettingsError", "create_kit_app", "load_settings"]
