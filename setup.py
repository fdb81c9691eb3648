"""Build the Cython hot path; everything else is declared in pyproject.toml."""
import Cython
from Cython.Build import cythonize
from setuptools import Extension, setup

# The one place for Cython directives: every module and every .pxd/.pxi it includes or
# cimports (the lb/ picks, framing.pxd) is compiled with the same ones.
DIRECTIVES = {"language_level": 3, "boundscheck": False, "wraparound": False, "cdivision": True}

extensions = [
    # the Cython version is recorded for "fastlb -vv" (Cython is not needed at run time)
    Extension("fastlb.loop.core", ["fastlb/loop/core.pyx"], extra_compile_args=["-O2"],
              define_macros=[("FASTLB_CYTHON_VERSION", f'"{Cython.__version__}"')]),
    Extension("fastlb.shm.words", ["fastlb/shm/words.pyx"], extra_compile_args=["-O2"]),
    Extension("fastlb.lb.strategy", ["fastlb/lb/strategy.pyx"], extra_compile_args=["-O2"]),
]

setup(ext_modules=cythonize(extensions, compiler_directives=DIRECTIVES))
