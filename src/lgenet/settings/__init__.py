"""Each setting declared once: its default, help, allowed values, since which version it exists and the value a
record made before it existed implies.

A configuration class is a frozen dataclass on :class:`Settings` whose fields are :func:`setting` declarations::

    @dataclass(frozen=True)
    class Fit(Settings):
        epochs: int = setting(100, help="training epochs", minimum=1, cli="--epochs")

From the declarations alone come the validation (:func:`validate`: type, choices, range, lists from comma strings,
strict booleans, ``None`` where allowed; messages such as "config parameter 'epochs' must be an integer >= 1, got
0"), the YAML/dict round trip (:meth:`Settings.from_dict`, :meth:`Settings.to_dict`, :func:`load_settings`, every
error naming its source file), the values of old records (:meth:`Settings.absent_values`,
:meth:`Settings.record_view`) and the command-line options (:func:`add_options`, the default shown from the
declaration). Rules that tie several settings together stay small explicit checks (``_check``).

This layer imports nothing of lgenet but :mod:`lgenet.errors` (and the standard library and yaml).
"""

from lgenet.settings.base import Settings, borrowed_values, load_settings, read_yaml_mapping
from lgenet.settings.cli import OptionHelp, add_options, show_value, values_from_args
from lgenet.settings.declaration import Declaration, SettingError, borrow, declaration, declarations, setting
from lgenet.settings.validation import validate

__all__ = [
    "Declaration",
    "OptionHelp",
    "SettingError",
    "Settings",
    "add_options",
    "borrow",
    "borrowed_values",
    "declaration",
    "declarations",
    "load_settings",
    "read_yaml_mapping",
    "setting",
    "show_value",
    "validate",
    "values_from_args",
]
