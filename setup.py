"""Maps the top-level folders core/, kernels/, desktop/ and resources/ to one import name, tunesmith.*.

The design card keeps those folders at the top of the repository, but bare names like `kernels` collide
with other distributions (PyPI has a `kernels` package that transformers probes for), so they install
as tunesmith.core, tunesmith.kernels, tunesmith.desktop and tunesmith.resources.  `tunesmith` itself is
a namespace package.  Everything else lives in pyproject.toml.
"""

from setuptools import find_packages, setup

TOP_LEVEL = ("core", "kernels", "desktop", "resources")

packages = [f"tunesmith.{name}" for name in find_packages(include=[f"{t}*" for t in TOP_LEVEL])]
packages += [f"tunesmith.{t}" for t in TOP_LEVEL if f"tunesmith.{t}" not in packages]

setup(
    packages=packages,
    package_dir={f"tunesmith.{t}": t for t in TOP_LEVEL},
    package_data={
        "tunesmith.resources": ["**/*"],
        # @triton.jit reads the kernels' source at run time: keep the .py files in every build.
        "tunesmith.kernels": ["*.py", "*/*.py"],
    },
)
