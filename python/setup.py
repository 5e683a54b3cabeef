"""Copies libedgellm.so into the package when it is built: from EDGELLM_LIBRARY, or from the
repository's build tree (build/lib/libedgellm.so). Without one, the installed package looks for
the library at run time (EDGELLM_LIBRARY, then the system's library path)."""
import os
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildPy(build_py):
    def run(self):
        super().run()
        here = Path(__file__).resolve().parent
        candidates = [os.environ.get("EDGELLM_LIBRARY", ""), str(here.parent / "build" / "lib" / "libedgellm.so")]
        for c in candidates:
            if c and Path(c).is_file():
                dest = Path(self.build_lib) / "edgellm" / "libedgellm.so"
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(os.path.realpath(c), dest)
                break


setup(cmdclass={"build_py": BuildPy})
