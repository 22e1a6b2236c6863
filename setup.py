import re

from setuptools import setup

# Not `version = attr:` in setup.cfg: setuptools < 46.4 imports the package for it, and so requests, not yet installed.
with open("leonardo_client/__init__.py", encoding="utf-8") as init:
    version = re.search(r'^__version__ = "(.+)"$', init.read(), re.M).group(1)

setup(version=version)
