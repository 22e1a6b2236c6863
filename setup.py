import os
import re

from setuptools import setup

# Not `version = attr:` in setup.cfg: setuptools < 46.4 imports the package for it, and so requests, not yet installed.
INIT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "leonardo_client", "__init__.py")
with open(INIT, encoding="utf-8") as init:
    version = re.search(r'^__version__ = "(.+)"$', init.read(), re.M).group(1)

setup(version=version)
