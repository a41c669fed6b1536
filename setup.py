"""Compile the bot's translations (bot/locale/*/LC_MESSAGES/*.po) into gettext .mo files whenever the package is
built or installed (a wheel carries them; an editable install writes them beside their .po). Everything else about
the package is in pyproject.toml."""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

LOCALE = Path("bot") / "locale"


class BuildWithCatalogues(build_py):
    def run(self) -> None:
        from babel.messages.mofile import write_mo
        from babel.messages.pofile import read_po

        super().run()
        root = Path(".") if self.editable_mode else Path(self.build_lib)
        for po in sorted(LOCALE.glob("*/LC_MESSAGES/*.po")):
            with open(po, "rb") as source:
                catalogue = read_po(source, locale=po.parts[-3])
            target = root / po.with_suffix(".mo")
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "wb") as out:
                write_mo(out, catalogue)


setup(cmdclass={"build_py": BuildWithCatalogues})
