"""Build the Cython hot path; everything else is declared in pyproject.toml."""
import Cython
from Cython.Build import cythonize
from setuptools import Extension, setup

extensions = [
    # the Cython version is recorded for "fastlb -vv" (Cython is not needed at run time)
    Extension("fastlb._core", ["fastlb/_core.pyx"], extra_compile_args=["-O2"],
              define_macros=[("FASTLB_CYTHON_VERSION", f'"{Cython.__version__}"')]),
    Extension("fastlb.shm.words", ["fastlb/shm/words.pyx"], extra_compile_args=["-O2"]),
]

setup(ext_modules=cythonize(extensions, language_level=3,
                            compiler_directives={"boundscheck": False, "wraparound": False}))
